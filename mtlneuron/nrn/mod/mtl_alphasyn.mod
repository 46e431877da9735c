COMMENT
Event-driven alpha-function synapse (mtlneuron).

NEURON's built-in AlphaSynapse fires once (a single onset). This version
takes any number of NetCon events: each event of weight w (uS) adds an
alpha conductance w * (t/tau) * exp(1 - t/tau), whose peak is w at t = tau,
so one site can receive a whole spike train.

Two first-order states give the alpha shape exactly:
  a' = -a/tau,  g' = (a - g)/tau,  event: a += w * e.
ENDCOMMENT

NEURON {
    POINT_PROCESS MtlAlphaSyn
    RANGE tau, e, i, g
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

NET_RECEIVE(weight (uS)) {
    a = a + weight * exp(1)
}
