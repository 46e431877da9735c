COMMENT
Exp2Syn with Tsodyks-Markram short-term plasticity (mtlneuron).

The conductance kinetics are NEURON's Exp2Syn (rise tau1, decay tau2, peak
normalised to the event weight). Every NetCon keeps its own plasticity state
(u, R, tlast) in its weight vector, so one point process can serve many
contacts. Event n of a stream, delta ms after event n - 1 (Tsodyks & Markram
1997; Maass & Markram 2002; mtlneuron.network.tm):

    u_n = U + u_{n-1} (1 - U) exp(-delta / F)           (u_1 = U; F = 0: u_n = U)
    R_n = 1 + (R_{n-1} (1 - u_{n-1}) - 1) exp(-delta / D)   (R_1 = 1)
    conductance step = weight * u_n * R_n / U

so the first event after rest has the full weight (uS).
ENDCOMMENT

NEURON {
    POINT_PROCESS MtlTmExp2Syn
    RANGE tau1, tau2, e, i, g, U, D, F
    NONSPECIFIC_CURRENT i
}

UNITS {
    (nA) = (nanoamp)
    (mV) = (millivolt)
    (uS) = (microsiemens)
}

PARAMETER {
    tau1 = 0.5 (ms) <1e-9,1e9>
    tau2 = 5 (ms) <1e-9,1e9>
    e = 0 (mV)
    U = 0.38 (1) <1e-9,1>
    D = 365.6 (ms) <1e-9,1e9>
    F = 25.71 (ms) <0,1e9>
}

ASSIGNED {
    v (mV)
    i (nA)
    g (uS)
    factor
}

STATE {
    A (uS)
    B (uS)
}

INITIAL {
    LOCAL tp
    if (tau1 / tau2 > 0.9999) {
        tau1 = 0.9999 * tau2
    }
    if (tau1 / tau2 < 1e-9) {
        tau1 = tau2 * 1e-9
    }
    A = 0
    B = 0
    tp = (tau1 * tau2) / (tau2 - tau1) * log(tau2 / tau1)
    factor = -exp(-tp / tau1) + exp(-tp / tau2)
    factor = 1 / factor
}

BREAKPOINT {
    SOLVE state METHOD cnexp
    g = B - A
    i = g * (v - e)
}

DERIVATIVE state {
    A' = -A / tau1
    B' = -B / tau2
}

NET_RECEIVE(weight (uS), u, R, tlast (ms)) {
    LOCAL step
    INITIAL {
        u = U
        R = 1
        tlast = -1e12  : no event yet (t itself starts at -1e10 in the steady-state start)
    }
    if (tlast > -1e11) {
        R = 1 + (R * (1 - u) - 1) * exp(-(t - tlast) / D)
        if (F > 0) {
            u = U + u * (1 - U) * exp(-(t - tlast) / F)
        } else {
            u = U
        }
    }
    tlast = t
    step = weight * factor * u * R / U
    A = A + step
    B = B + step
}
