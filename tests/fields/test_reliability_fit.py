"""Issue 12.6 (fields): a dipole fit with no more channels than free parameters is refused."""
import numpy as np
import pytest

from mtlneuron import fields


@pytest.fixture(scope="module")
def eeg64():
    p = fields.dipole_dataset(np.outer(np.hanning(20), [3, -2, 8]), units="nA m")
    return fields.eeg(p, electrodes="biosemi64", dipole_location=(10000, -20000, 60000))


@pytest.mark.parametrize("n", [1, 3, 6])
def test_too_few_channels_are_refused(eeg64, n):
    with pytest.raises(ValueError, match="needs more than 6 independent EEG signals"):
        fields.fit_dipole(eeg64.isel(electrode=slice(0, n)))


def test_seven_channels_are_enough(eeg64):
    fit = fields.fit_dipole(eeg64.isel(electrode=slice(0, 7)))
    np.testing.assert_allclose(fit["location"].values, [10000, -20000, 60000], atol=50)
