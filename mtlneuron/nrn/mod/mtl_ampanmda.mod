COMMENT
Glutamatergic synapse with an AMPA and an NMDA component (mtlneuron).

Each NetCon event of weight w (uS) starts
  AMPA: alpha conductance with time constant tau_ampa and peak w,
  NMDA: dual-exponential conductance (tau1_nmda rise, tau2_nmda decay)
        with peak nmda_ratio * w, gated by the voltage-dependent Mg2+ block
        of Jahr & Stevens (1990): B(v) = 1 / (1 + exp(-0.062 v) * mg / 3.57).
Both components share the reversal potential e.
ENDCOMMENT

NEURON {
    POINT_PROCESS MtlAmpaNmda
    RANGE tau_ampa, tau1_nmda, tau2_nmda, nmda_ratio, mg, e
    RANGE i, i_ampa, i_nmda, g_ampa, g_nmda, block
    NONSPECIFIC_CURRENT i
}

UNITS {
    (nA) = (nanoamp)
    (mV) = (millivolt)
    (uS) = (microsiemens)
    (mM) = (milli/liter)
}

PARAMETER {
    tau_ampa = 2 (ms) <1e-9,1e9>
    tau1_nmda = 2 (ms) <1e-9,1e9>
    tau2_nmda = 50 (ms) <1e-9,1e9>
    nmda_ratio = 1 (1)
    mg = 1 (mM)
    e = 0 (mV)
}

ASSIGNED {
    v (mV)
    i (nA)
    i_ampa (nA)
    i_nmda (nA)
    g_nmda (uS)
    block (1)
    nmda_factor (1)
}

STATE {
    a (uS)
    g_ampa (uS)
    nr (uS)
    nd (uS)
}

INITIAL {
    LOCAL tp
    if (tau1_nmda / tau2_nmda > 0.9999) {
        tau1_nmda = 0.9999 * tau2_nmda
    }
    a = 0
    g_ampa = 0
    nr = 0
    nd = 0
    : normalise the dual exponential so that its peak is 1 per unit weight
    tp = (tau1_nmda * tau2_nmda) / (tau2_nmda - tau1_nmda) * log(tau2_nmda / tau1_nmda)
    nmda_factor = 1 / (-exp(-tp / tau1_nmda) + exp(-tp / tau2_nmda))
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    block = 1 / (1 + exp(-0.062 * v) * mg / 3.57)
    g_nmda = (nd - nr) * block
    i_ampa = g_ampa * (v - e)
    i_nmda = g_nmda * (v - e)
    i = i_ampa + i_nmda
}

DERIVATIVE states {
    a' = -a / tau_ampa
    g_ampa' = (a - g_ampa) / tau_ampa
    nr' = -nr / tau1_nmda
    nd' = -nd / tau2_nmda
}

NET_RECEIVE(weight (uS)) {
    a = a + weight * exp(1)
    nr = nr + weight * nmda_ratio * nmda_factor
    nd = nd + weight * nmda_ratio * nmda_factor
}
