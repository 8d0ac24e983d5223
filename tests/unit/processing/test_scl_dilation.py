"""to_scl_dilation_mask / mask_scl_dilation against a direct numpy implementation of the algorithm
(explicit 2D Gaussian convolution, no FFT), and the docs' use: `data.mask(to_scl_dilation_mask(scl))`."""

from __future__ import annotations

import numpy as np
import pytest
import stratus_processing.processes  # noqa: F401  (registers the processes)
from stratus.errors import ProcessParameterInvalidException
from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.graph import ProcessGraph, evaluate_graph
from stratus_processing.processes.scl import gaussian_convolution
from stratus_processing.tiling import tiling_obstacle

from tests.unit.processing.processing_testkit import small_grid, utc

NAN = np.nan


def scene(seed: int, height: int = 30, width: int = 36) -> np.ndarray:
    """SCL classes: mostly vegetation (4) and bare soil (5), a cloud (9) with its shadow (3), specks of
    cirrus (10) and saturated pixels (1), a no-data pixel."""
    rng = np.random.default_rng(seed)
    classes = rng.choice([4.0, 5.0], (height, width))
    top, left = rng.integers(5, 15, 2)
    classes[top:top + 5, left:left + 6] = 9
    classes[top + 6:top + 9, left + 2:left + 8] = 3
    classes[rng.integers(0, height, 3), rng.integers(0, width, 3)] = 10
    classes[rng.integers(0, height, 2), rng.integers(0, width, 2)] = 1
    classes[0, 0] = NAN
    return classes


def reference_convolution(values: np.ndarray, size: int) -> np.ndarray:
    """The true 2D convolution with the normalised Gaussian (sigma = size / 6, centred at size // 2),
    zero beyond the edge, cropped at (size - 1) // 2: sum over the kernel, pixel by pixel."""
    sigma = size / 6.0
    i = np.arange(size) - size // 2
    kernel = np.exp(-(i[:, None] ** 2 + i[None, :] ** 2) / (2 * sigma * sigma))
    kernel /= kernel.sum()
    height, width = values.shape
    start = (size - 1) // 2
    result = np.zeros_like(values)
    for row in range(height):
        for col in range(width):
            total = 0.0
            for ky in range(size):
                for kx in range(size):
                    y, x = row + start - ky, col + start - kx
                    if 0 <= y < height and 0 <= x < width:
                        total += kernel[ky, kx] * values[y, x]
            result[row, col] = total
    return result


def reference_mask(classes: np.ndarray, kernel1: int, kernel2: int, erosion: int = 0) -> np.ndarray:
    not_clear = ~np.isin(classes, [2, 4, 5, 6, 7])
    cloudy = np.isin(classes, [3, 8, 9, 10, 11])

    def eroded(mask):
        if not erosion:
            return mask
        r = erosion // 2
        out = mask.copy()
        for row, col in np.ndindex(mask.shape):
            for dy in range(-r, r + 1):
                for dx in range(-r, r + 1):
                    y, x = row + dy, col + dx
                    if dy * dy + dx * dx <= r * r and 0 <= y < mask.shape[0] and 0 <= x < mask.shape[1]:
                        out[row, col] &= mask[y, x]
        return out

    first = reference_convolution(eroded(not_clear).astype(float), kernel1) > 0.057
    second = reference_convolution(eroded(cloudy).astype(float), kernel2) > 0.025
    return (first | second).astype(float)


def scl_cube(*scenes):
    values = np.stack(scenes)[:, None]
    return cubes.make_cube(values, grid=small_grid(values.shape[3], values.shape[2]),
                           times=[utc(2022, 6, 1 + 5 * i) for i in range(len(scenes))], bands=["SCL"])


def run(process_id, cube, **arguments):
    graph = {"n": {"process_id": process_id, "result": True,
                   "arguments": {"data": {"from_parameter": "cube"}, **arguments}}}
    return evaluate_graph(graph, EvalEnv(), arguments={"cube": cube})


@pytest.mark.parametrize("size", [1, 4, 5, 9])
def test_fft_convolution_equals_the_direct_sum(size):
    values = np.random.default_rng(size).uniform(0, 1, (13, 17))
    np.testing.assert_allclose(gaussian_convolution(values, size), reference_convolution(values, size), atol=1e-12)


@pytest.mark.parametrize("kernel1, kernel2, erosion", [(5, 9, 0), (7, 13, 3), (0, 9, 0), (5, 0, 0)])
def test_mask_equals_the_reference(kernel1, kernel2, erosion):
    scenes = [scene(1), scene(2)]
    mask = run("to_scl_dilation_mask", scl_cube(*scenes), kernel1_size=kernel1, kernel2_size=kernel2,
               erosion_kernel_size=erosion)

    assert mask.dims == ("t", "bands", "y", "x")
    assert list(mask.bands.values) == ["SCL"]
    for index, classes in enumerate(scenes):
        expected = reference_mask(classes, kernel1, kernel2, erosion) if kernel1 and kernel2 else None
        if expected is None:  # a kernel size 0 keeps that mask undilated
            not_clear = ~np.isin(classes, [2, 4, 5, 6, 7])
            cloudy = np.isin(classes, [3, 8, 9, 10, 11])
            first = not_clear if not kernel1 else reference_convolution(not_clear.astype(float), kernel1) > 0.057
            second = cloudy if not kernel2 else reference_convolution(cloudy.astype(float), kernel2) > 0.025
            expected = (first | second).astype(float)
        np.testing.assert_array_equal(mask.values[index, 0], expected)
    # the cloud grows: more is masked than its own pixels, less than everything
    cloud = np.isin(scenes[0], [3, 8, 9, 10, 11]).sum()
    assert cloud < mask.values[0, 0].sum() < mask.values[0, 0].size


def test_the_docs_cloud_mask_masks_the_data():
    # the docs: scl.process("to_scl_dilation_mask", data=scl, kernel1_size=17, kernel2_size=77, ...) then mask
    classes = scene(5, 40, 44)
    red = np.random.default_rng(9).uniform(0, 3000, classes.shape)
    values = np.stack([red, classes])[None]
    data = cubes.make_cube(values, grid=small_grid(44, 40), times=[utc(2022, 6, 1)], bands=["B04", "SCL"])
    graph = {
        "scl": {"process_id": "filter_bands", "arguments": {"data": {"from_parameter": "cube"}, "bands": ["SCL"]}},
        "m": {"process_id": "to_scl_dilation_mask", "arguments": {
            "data": {"from_node": "scl"}, "kernel1_size": 17, "kernel2_size": 77,
            "mask1_values": [2, 4, 5, 6, 7], "mask2_values": [3, 8, 9, 10, 11], "erosion_kernel_size": 3}},
        "b04": {"process_id": "filter_bands", "arguments": {"data": {"from_parameter": "cube"}, "bands": ["B04"]}},
        "masked": {"process_id": "mask", "result": True, "arguments": {"data": {"from_node": "b04"},
                                                                         "mask": {"from_node": "m"}}},
    }
    masked = evaluate_graph(graph, EvalEnv(), arguments={"cube": data})

    expected_mask = reference_mask(classes, 17, 77, 3)
    np.testing.assert_array_equal(masked.values[0, 0], np.where(expected_mask == 1, NAN, red))


def test_mask_scl_dilation_masks_every_band_with_the_default_kernels():
    classes = scene(6)
    red = np.random.default_rng(2).uniform(0, 3000, classes.shape)
    cube = cubes.make_cube(np.stack([red, classes])[None], grid=small_grid(36, 30), times=[utc(2022, 6, 1)],
                           bands=["B04", "SCL"])
    masked = run("mask_scl_dilation", cube, scl_band_name="SCL")

    # kernel 2 (201 px) is wider than the scene: a cloud anywhere masks it all
    expected_mask = reference_mask(classes, 17, 201)
    np.testing.assert_array_equal(masked.sel(bands="B04").values[0], np.where(expected_mask == 1, NAN, red))
    assert masked.bands.values.tolist() == ["B04", "SCL"]


def test_a_cube_with_several_bands_and_no_scl_is_refused():
    cube = cubes.make_cube(np.zeros((1, 2, 4, 5)), grid=small_grid(), times=[utc(2022, 6, 1)], bands=["B04", "B08"])
    with pytest.raises(ProcessParameterInvalidException, match="SCL"):
        run("to_scl_dilation_mask", cube)


def test_graphs_with_the_scl_mask_are_evaluated_whole_not_tiled():
    for process_id in ("to_scl_dilation_mask", "mask_scl_dilation"):
        graph = ProcessGraph({
            "load": {"process_id": "load_collection", "arguments": {"id": "S2", "spatial_extent": None,
                                                                    "temporal_extent": None}},
            "m": {"process_id": process_id, "result": True, "arguments": {"data": {"from_node": "load"}}},
        })
        assert process_id in tiling_obstacle(graph)
