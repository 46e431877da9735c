COMMENT
MtlAlphaSyn with Tsodyks-Markram short-term plasticity (mtlneuron).

The conductance kinetics are MtlAlphaSyn's (an event of weight w adds
w (t/tau) exp(1 - t/tau), peak w at t = tau), so a TM contact on a site of an
alpha-synapse cell (point, point_nmda) has that site's kinetics. Plasticity as
in MtlTmExp2Syn: every NetCon keeps its own (u, R, tlast); event n, delta ms
after event n - 1:

    u_n = U + u_{n-1} (1 - U) exp(-delta / F)           (u_1 = U; F = 0: u_n = U)
    R_n = 1 + (R_{n-1} (1 - u_{n-1}) - 1) exp(-delta / D)   (R_1 = 1)
    conductance step = weight * u_n * R_n / U
ENDCOMMENT

NEURON {
    POINT_PROCESS MtlTmAlphaSyn
    RANGE tau, e, i, g, U, D, F
    NONSPECIFIC_CURRENT i
}

UNITS {
    (nA) = (nanoamp)
    (mV) = (millivolt)
    (uS) = (microsiemens)
}

PARAMETER {
    tau = 2 (ms) <1e-9,1e9>
    e = 0 (mV)
    U = 0.38 (1) <1e-9,1>
    D = 365.6 (ms) <1e-9,1e9>
    F = 25.71 (ms) <0,1e9>
}

ASSIGNED {
    v (mV)
    i (nA)
}

STATE {
    a (uS)
    g (uS)
}

INITIAL {
    a = 0
    g = 0
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    i = g * (v - e)
}

DERIVATIVE states {
    a' = -a / tau
    g' = (a - g) / tau
}

NET_RECEIVE(weight (uS), u, R, tlast (ms)) {
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
    a = a + weight * exp(1) * u * R / U
}
