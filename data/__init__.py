"""Pretrained surrogate weights (``<name>.pt``) and their model cards (``<name>.md``).

Installed as the package ``mtlneuron.data`` so that ``Surrogate.pretrained``
finds them after a plain ``pip install .`` as well as in a source checkout.
"""
