"""What an XYZ service shows of a job's result, by default and as configured."""

from __future__ import annotations

import pytest

from stratus.domain.web_services import _configuration, _style
from stratus.errors import ServiceConfigInvalidException

ASSETS = {
    "result.json": {"key": "jobs/j/r/result.json", "type": "application/json"},
    "ndvi.tif": {"key": "jobs/j/r/ndvi.tif", "type": "image/tiff; application=geotiff",
                 "bbox": [11.3, 46.4, 11.4, 46.5], "raster:bands": [{"statistics": {"minimum": -0.2, "maximum": 0.9}}]},
    "plain.tif": {"key": "jobs/j/r/plain.tif", "type": "image/tiff; application=geotiff"},
}


def test_defaults_are_the_first_geotiff_its_statistics_and_viridis():
    style = _style(ASSETS, {})
    assert (style.asset_key, style.band, style.rescale, style.colormap) == ("jobs/j/r/ndvi.tif", 1, (-0.2, 0.9),
                                                                           "viridis")
    assert style.bbox == (11.3, 46.4, 11.4, 46.5)


def test_a_file_without_statistics_is_stretched_over_0_to_1_unless_configured():
    assert _style(ASSETS, {"asset": "plain.tif"}).rescale == (0.0, 1.0)
    assert _style(ASSETS, _configuration({"asset": "plain.tif", "rescale": [-1, 1]})).rescale == (-1.0, 1.0)


@pytest.mark.parametrize("configuration", [{"asset": "result.json"}, {"asset": "nope.tif"}, {"band": 2}])
def test_a_file_or_band_the_result_lacks_is_refused(configuration):
    with pytest.raises(ServiceConfigInvalidException):
        _style(ASSETS, configuration)
