"""The demo collection: small, deterministic, Sentinel-2-L2A-like scenes written to S3 as real COGs
with a static STAC catalog (key layout: `stratus.catalog_layout`).

Two areas in different UTM zones, so loading across zones means reprojecting:
- Bolzano (EPSG:32632), 3 × 3 km at 10 m: a river, a town, fields, forest on the valley side;
- Vienna (EPSG:32633), 3 × 3 km at 10 m: the Danube, the city, fields.
Dates every 5 days in June 2022 plus two in July (so temporal filters matter). Crops green up
through June and some are harvested in July; clouds (SCL 8/9, shadows 3) cover parts of some
dates, with `eo:cloud_cover` computed from the SCL; one date has a no-data corner (0 in all bands).

Everything derives from fixed seeds: the same call writes the same bytes. Generation runs at every
local start, so scenes stay small (about a second of compute, plus ~100 small S3 writes).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.io import MemoryFile
from rasterio.session import DummySession
from rasterio.warp import transform_bounds, transform_geom
from stratus import catalog_layout
from stratus.adapters.s3_json import read_json

DEMO_COLLECTION_ID = "sentinel-2-l2a-demo"

COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
STAC_VERSION = "1.0.0"
_EXTENSIONS = {
    "datacube": "https://stac-extensions.github.io/datacube/v2.2.0/schema.json",
    "eo": "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "raster": "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "proj": "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "item_assets": "https://stac-extensions.github.io/item-assets/v1.0.0/schema.json",
}

REFLECTANCE_SCALE = 0.0001  # Sentinel-2 L2A: reflectance = DN * 0.0001
NODATA = 0
PIXEL_SIZE = 10  # metres, the 10 m bands; SCL is at twice that
# 256 px internal tiles: a 300 px scene has several, so window reads exercise partial-tile access.
# No overviews: at 300 px they buy nothing and would double the encoding time of every start.
_COG_OPTIONS = {"compress": "DEFLATE", "predictor": "YES", "blocksize": 256, "overviews": "NONE"}
# Scenes encoded and uploaded at once: GDAL's encoder and the S3 round trips release the GIL.
_WRITE_CONCURRENCY = 4


@dataclass(frozen=True)
class DemoBand:
    name: str
    title: str
    common_name: str | None
    center_wavelength: float | None  # micrometres
    full_width_half_max: float | None  # micrometres
    resolution: int  # metres
    data_type: str


BANDS = (
    DemoBand("B02", "Blue (band 2) - 10m", "blue", 0.49, 0.098, 10, "uint16"),
    DemoBand("B03", "Green (band 3) - 10m", "green", 0.56, 0.045, 10, "uint16"),
    DemoBand("B04", "Red (band 4) - 10m", "red", 0.665, 0.038, 10, "uint16"),
    DemoBand("B08", "NIR 1 (band 8) - 10m", "nir", 0.842, 0.145, 10, "uint16"),
    DemoBand("SCL", "Scene classification map (SCL) - 20m", None, None, None, 20, "uint8"),
)
REFLECTANCE_BANDS = BANDS[:4]

# Sentinel-2 L2A scene classification values used by the demo.
SCL_NO_DATA, SCL_CLOUD_SHADOW, SCL_VEGETATION, SCL_NOT_VEGETATED, SCL_WATER = 0, 3, 4, 5, 6
SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH = 8, 9
SCL_DESCRIPTION = ("Scene classification: 0 no data, 3 cloud shadow, 4 vegetation, 5 not vegetated, "
                   "6 water, 8 cloud (medium probability), 9 cloud (high probability)")

# Land cover classes of the synthetic scenes.
WATER, BUILT, BARE, FOREST, CROP = range(5)
_LAND_COVER_SCL = np.array([SCL_WATER, SCL_NOT_VEGETATED, SCL_NOT_VEGETATED, SCL_VEGETATION, SCL_VEGETATION],
                           dtype=np.uint8)

# Typical L2A surface reflectance (DN) per class for B02, B03, B04, B08; crops and forest are
# interpolated between their bare-ish and fully green states by the season (see `_reflectance`).
_CLASS_DN = {
    WATER: (700, 600, 400, 250),  # NIR below red
    BUILT: (1300, 1350, 1400, 1650),  # all bands alike, mid reflectance
    BARE: (1000, 1300, 1700, 2300),
}
_GREEN_DN = (300, 650, 280, 4600)  # dense canopy: low red, high NIR
_SPARSE_DN = (800, 1100, 1300, 2300)  # emerging crop
_FOREST_DN = ((350, 600, 330, 3200), (280, 550, 240, 3700))  # early June, full summer
_CLOUD_DN = (7200, 7000, 7100, 7600)


@dataclass(frozen=True)
class River:
    """A river as a sinuous band: centre u(v) = base + amplitude·sin(2π(cycles·v + phase)), in tile units."""

    base: float
    amplitude: float
    cycles: float
    phase: float
    width: float
    slope: float = 0.0  # tilts the course: centre += slope·(v - 0.5)


@dataclass(frozen=True)
class Scene:
    """One acquisition of an area."""

    when: datetime
    platform: str
    cloud_fraction: float = 0.0  # share of the tile under cloud (before no-data)
    nodata_corner: bool = False  # swath edge: the south-east corner has no data


@dataclass(frozen=True)
class DemoArea:
    name: str
    title: str
    epsg: int
    mgrs_tile: str
    west: int  # metres; multiples of 20 so the 20 m SCL grid shares the 10 m grid's edges
    north: int
    size: int  # pixels at 10 m
    seed: int
    river: River
    lake: tuple[float, float, float, float]  # centre u, v and radii in tile units
    town: tuple[float, float, float]  # centre u, v and radius in tile units
    forest_edge: float  # tile units from the west edge covered by (mountain) forest
    scenes: tuple[Scene, ...]

    @property
    def crs(self) -> CRS:
        return CRS.from_epsg(self.epsg)

    def transform(self, resolution: int) -> Affine:
        return Affine(resolution, 0.0, self.west, 0.0, -resolution, self.north)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        extent = self.size * PIXEL_SIZE
        return self.west, self.north - extent, self.west + extent, self.north


def _dates(first: datetime, count: int, every_days: int = 5) -> list[datetime]:
    return [first + timedelta(days=every_days * i) for i in range(count)]


def _scenes(first: datetime, clouds: dict[int, float], nodata_index: int) -> tuple[Scene, ...]:
    # Six dates in June, two in July; Sentinel-2A and 2B alternate.
    return tuple(Scene(when, "sentinel-2a" if i % 2 == 0 else "sentinel-2b", clouds.get(i, 0.0), i == nodata_index)
                 for i, when in enumerate(_dates(first, 8)))


AREAS = (
    DemoArea(
        name="bolzano", title="Bolzano, South Tyrol (Italy)", epsg=32632, mgrs_tile="32TPS",
        west=678000, north=5153000, size=300, seed=32632,
        river=River(base=0.66, amplitude=0.05, cycles=1.1, phase=0.15, width=0.028),
        lake=(0.22, 0.80, 0.09, 0.05), town=(0.80, 0.42, 0.13), forest_edge=0.16,
        scenes=_scenes(datetime(2022, 6, 2, 10, 20, 31, tzinfo=UTC), clouds={2: 0.25, 6: 0.55},
                       nodata_index=4),
    ),
    DemoArea(
        name="vienna", title="Vienna (Austria)", epsg=32633, mgrs_tile="33UXP",
        west=600000, north=5342000, size=300, seed=32633,
        river=River(base=0.45, amplitude=0.03, cycles=0.6, phase=0.4, width=0.05, slope=0.5),
        lake=(0.85, 0.15, 0.06, 0.04), town=(0.30, 0.40, 0.22), forest_edge=0.08,
        scenes=_scenes(datetime(2022, 6, 3, 9, 50, 59, tzinfo=UTC), clouds={1: 0.15, 4: 0.40},
                       nodata_index=-1),
    ),
)


def generate_demo_collection(s3_client: Any, bucket: str, collection_id: str = DEMO_COLLECTION_ID,
                             areas: tuple[DemoArea, ...] = AREAS) -> dict[str, Any]:
    """Write the demo collection (COGs, STAC items, collection, catalog entry) into `bucket`; `areas`: other
    scenes (e.g. an area with a larger `size`: its features scale with it).

    Returns a summary: collection id, item and asset counts, and per area its CRS, bounds and dates.
    """
    tasks = []
    area_summaries = []
    for area in areas:
        land_cover, texture = _land_cover(area)
        tasks += [(area, index, scene, land_cover, texture) for index, scene in enumerate(area.scenes)]
        area_summaries.append({
            "name": area.name, "epsg": area.epsg, "bbox": _round(transform_bounds(area.crs, "EPSG:4326", *area.bounds)),
            "native_bbox": list(area.bounds), "items": len(area.scenes),
            "dates": [_iso(s.when) for s in area.scenes],
        })
    with ThreadPoolExecutor(max_workers=_WRITE_CONCURRENCY, thread_name_prefix="demo-data") as pool:
        # Every scene has its own seeded generator, so the result doesn't depend on scheduling.
        items = list(pool.map(lambda task: _write_scene(s3_client, bucket, collection_id, *task), tasks))

    for item in items:
        _put_json(s3_client, bucket, catalog_layout.item_key(collection_id, item["id"]), item)
    collection = _collection_document(collection_id, items, areas)
    _put_json(s3_client, bucket, catalog_layout.collection_key(collection_id), collection)
    _register_in_catalog(s3_client, bucket, collection)
    return {
        "collection_id": collection_id,
        "items": len(items),
        "assets": sum(len(i["assets"]) for i in items),
        "temporal_extent": collection["extent"]["temporal"]["interval"][0],
        "areas": area_summaries,
    }


# --- synthetic scenes ---------------------------------------------------------------------------

def _tile_coords(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) at pixel centres in tile units: u west→east, v north→south, both 0..1."""
    axis = (np.arange(size) + 0.5) / size
    return np.meshgrid(axis, axis)


def _smooth_noise(rng: np.random.Generator, u: np.ndarray, v: np.ndarray, *, waves: int = 8,
                  max_cycles: float = 4.0) -> np.ndarray:
    """A smooth random field with mean 0 and standard deviation 1 (a sum of random plane waves)."""
    field = np.zeros_like(u)
    for _ in range(waves):
        fu, fv = rng.uniform(-max_cycles, max_cycles, size=2)
        field += np.cos(2 * np.pi * (fu * u + fv * v) + rng.uniform(0, 2 * np.pi))
    return (field - field.mean()) / field.std()


def _land_cover(area: DemoArea) -> tuple[np.ndarray, np.ndarray]:
    """The area's static land cover classes and a smooth texture field (mean 0, sd 1), both at 10 m."""
    rng = np.random.default_rng(area.seed)
    u, v = _tile_coords(area.size)
    wobble = _smooth_noise(rng, u, v, max_cycles=6.0)
    texture = _smooth_noise(rng, u, v, waves=12, max_cycles=20.0)

    # Fields: 150 m parcels, each crop, bare soil or a wood lot.
    parcel = 15
    rows, cols = np.indices((area.size, area.size)) // parcel
    parcel_count = -(-area.size // parcel)
    parcel_class = rng.choice([CROP, CROP, CROP, CROP, BARE, FOREST], size=(parcel_count, parcel_count))
    cover = parcel_class[rows, cols].astype(np.uint8)

    # Forest on the western valley side, with a ragged edge.
    cover[u < area.forest_edge + 0.03 * wobble] = FOREST
    # The town: a ragged blob with a few gardens.
    town_u, town_v, town_r = area.town
    in_town = np.hypot(u - town_u, v - town_v) < town_r * (1 + 0.15 * wobble)
    cover[in_town] = BUILT
    gardens = in_town & ((rows + cols) % 5 == 0) & (texture > 0.8)
    cover[gardens] = CROP
    # The lake and the river last: water wins.
    lake_u, lake_v, lake_ru, lake_rv = area.lake
    cover[((u - lake_u) / lake_ru) ** 2 + ((v - lake_v) / lake_rv) ** 2 < 1] = WATER
    river = area.river
    centre = (river.base + river.amplitude * np.sin(2 * np.pi * (river.cycles * v + river.phase))
              + river.slope * (v - 0.5))
    cover[np.abs(u - centre) < river.width / 2] = WATER
    return cover, texture


def _growth(when: datetime, phase_day: float) -> float:
    """Seasonal green-up (0..1): logistic around `phase_day` (day of year), about a week wide."""
    day = when.timetuple().tm_yday
    return float(1 / (1 + np.exp(-(day - phase_day) / 6.0)))


def _reflectance(area: DemoArea, scene: Scene, cover: np.ndarray, texture: np.ndarray,
                 rng: np.random.Generator) -> np.ndarray:
    """Surface reflectance DN (4, y, x) for the clear-sky scene."""
    size = area.size
    out = np.zeros((4, size, size), dtype=np.float64)
    for cls, dn in _CLASS_DN.items():
        out[:, cover == cls] = np.array(dn, dtype=np.float64)[:, None]

    # Crops green up at dates varying smoothly across the fields (from the texture), and some are
    # harvested in July (bare again), so the season shows in NDVI.
    parcel_phase = 150 + 25 * (texture + 1) / 2  # day of year, mostly ~150..175 (end of May to late June)
    day = scene.when.timetuple().tm_yday
    green = 1 / (1 + np.exp(-(day - parcel_phase) / 6.0))
    harvested = (texture > 0.6) & (day > 182)
    green = np.where(harvested, 0.05, green)
    crop = cover == CROP
    for band in range(4):
        sparse, dense = _SPARSE_DN[band], _GREEN_DN[band]
        out[band, crop] = (sparse + (dense - sparse) * green)[crop]

    # Forest: full canopy, a little denser as summer advances.
    season = _growth(scene.when, 165)
    forest = cover == FOREST
    for band in range(4):
        early, summer = _FOREST_DN[0][band], _FOREST_DN[1][band]
        out[band, forest] = early + (summer - early) * season

    # Spatial texture (6 % per standard deviation) and per-acquisition sensor/atmosphere noise (2 %).
    out *= 1 + 0.06 * texture
    out *= 1 + 0.02 * rng.standard_normal(out.shape)
    return out


def _clouds(area: DemoArea, scene: Scene, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cloud opacity (0..1), cloud class (0, 8 or 9) and shadow mask at 10 m."""
    size = area.size
    opacity = np.zeros((size, size))
    cloud_class = np.zeros((size, size), dtype=np.uint8)
    shadow = np.zeros((size, size), dtype=bool)
    if scene.cloud_fraction <= 0:
        return opacity, cloud_class, shadow
    u, v = _tile_coords(size)
    field = _smooth_noise(rng, u, v, waves=10, max_cycles=3.0)
    edge = np.quantile(field, 1 - scene.cloud_fraction)
    core = np.quantile(field, 1 - scene.cloud_fraction * 0.6)
    cloudy = field >= edge
    opacity[cloudy] = np.clip(0.55 + 0.45 * (field[cloudy] - edge) / max(core - edge, 1e-9), 0.55, 1.0)
    cloud_class[cloudy] = SCL_CLOUD_MEDIUM
    cloud_class[field >= core] = SCL_CLOUD_HIGH
    # The morning sun stands in the south-east, so shadows fall 120 m north and 90 m west of their cloud.
    shifted = np.zeros_like(cloudy)
    dy, dx = 12, 9
    shifted[:-dy, :-dx] = cloudy[dy:, dx:]
    shadow = shifted & ~cloudy
    return opacity, cloud_class, shadow


def _scene_rasters(area: DemoArea, index: int, scene: Scene, cover: np.ndarray,
                   texture: np.ndarray) -> tuple[dict[str, np.ndarray], float]:
    """DN arrays per band name (10 m bands at 10 m, SCL at 20 m) and the cloud cover percentage."""
    rng = np.random.default_rng([area.seed, index])
    surface = _reflectance(area, scene, cover, texture, rng)
    opacity, cloud_class, shadow = _clouds(area, scene, rng)

    observed = surface * (1 - opacity) + np.array(_CLOUD_DN, dtype=np.float64)[:, None, None] * opacity
    observed[:, shadow] *= 0.35
    dn = np.clip(np.rint(observed), 1, 10000).astype(np.uint16)  # 0 is reserved for no data

    scl = _LAND_COVER_SCL[cover]
    scl = np.where(shadow, SCL_CLOUD_SHADOW, scl)
    scl = np.where(cloud_class > 0, cloud_class, scl).astype(np.uint8)

    if scene.nodata_corner:
        u, v = _tile_coords(area.size)
        outside = u + v > 1.45  # the south-east corner lies outside the swath
        dn[:, outside] = NODATA
        scl[outside] = SCL_NO_DATA

    scl_20m = scl[::2, ::2]  # nearest: each 20 m pixel takes its north-west 10 m pixel's class
    valid = scl_20m != SCL_NO_DATA
    cloudy = np.isin(scl_20m, (SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH))
    cloud_cover = round(100.0 * cloudy.sum() / max(valid.sum(), 1), 2)

    rasters = {band.name: dn[i] for i, band in enumerate(REFLECTANCE_BANDS)}
    rasters["SCL"] = scl_20m
    return rasters, cloud_cover


def _cog_bytes(values: np.ndarray, area: DemoArea, resolution: int, band: DemoBand) -> bytes:
    profile = {
        "driver": "COG", "width": values.shape[1], "height": values.shape[0], "count": 1,
        "dtype": band.data_type, "crs": area.crs, "transform": area.transform(resolution), "nodata": NODATA,
        **_COG_OPTIONS,
    }
    # An explicit no-credentials session: otherwise rasterio builds a boto3 session for every
    # dataset it opens whenever AWS variables are set (always, locally), ~15 ms each.
    with rasterio.Env(session=DummySession()), MemoryFile() as memfile:
        with memfile.open(**profile) as dst:
            dst.write(values, 1)
            dst.set_band_description(1, band.name)
            if band.common_name is not None:
                dst.scales = (REFLECTANCE_SCALE,)
                dst.offsets = (0.0,)
        return memfile.read()


# --- STAC ---------------------------------------------------------------------------------------

def _item_id(area: DemoArea, scene: Scene) -> str:
    satellite = "S2A" if scene.platform.endswith("a") else "S2B"
    return f"{satellite}_MSIL2A_{scene.when:%Y%m%dT%H%M%S}_T{area.mgrs_tile}"


def _write_scene(s3_client: Any, bucket: str, collection_id: str, area: DemoArea, index: int, scene: Scene,
                 cover: np.ndarray, texture: np.ndarray) -> dict[str, Any]:
    item_id = _item_id(area, scene)
    rasters, cloud_cover = _scene_rasters(area, index, scene, cover, texture)
    assets = {}
    for band in BANDS:
        values = rasters[band.name]
        key = catalog_layout.asset_key(collection_id, item_id, band.name)
        s3_client.put_object(Bucket=bucket, Key=key, Body=_cog_bytes(values, area, band.resolution, band),
                             ContentType=COG_MEDIA_TYPE)
        assets[band.name] = {
            "href": f"s3://{bucket}/{key}",
            **_asset_metadata(band),
            "proj:shape": list(values.shape),
            "proj:transform": list(area.transform(band.resolution))[:6],
        }
    footprint = {"type": "Polygon", "coordinates": [[
        (area.bounds[0], area.bounds[1]), (area.bounds[2], area.bounds[1]), (area.bounds[2], area.bounds[3]),
        (area.bounds[0], area.bounds[3]), (area.bounds[0], area.bounds[1])]]}
    geometry = transform_geom(area.crs, "EPSG:4326", footprint, precision=7)
    return {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": [_EXTENSIONS["eo"], _EXTENSIONS["raster"], _EXTENSIONS["proj"]],
        "id": item_id,
        "collection": collection_id,
        "bbox": _round(transform_bounds(area.crs, "EPSG:4326", *area.bounds)),
        "geometry": geometry,
        "properties": {
            "datetime": _iso(scene.when),
            "platform": scene.platform,
            "constellation": "sentinel-2",
            "instruments": ["msi"],
            "eo:cloud_cover": cloud_cover,
            "proj:epsg": area.epsg,
            "s2:mgrs_tile": area.mgrs_tile,
            "demo:area": area.name,
        },
        "assets": assets,
        "links": [
            {"rel": "collection", "href": "../collection.json", "type": "application/json"},
            {"rel": "parent", "href": "../collection.json", "type": "application/json"},
            {"rel": "root", "href": "../../../catalog.json", "type": "application/json"},
        ],
    }


def _asset_metadata(band: DemoBand) -> dict[str, Any]:
    """What every item's asset of this band shares (also the collection's `item_assets`)."""
    raster_band: dict[str, Any] = {"nodata": NODATA, "data_type": band.data_type, "spatial_resolution": band.resolution}
    if band.common_name is not None:
        raster_band.update(scale=REFLECTANCE_SCALE, offset=0)
    return {
        "type": COG_MEDIA_TYPE,
        "roles": ["data"],
        "title": band.title,
        "gsd": band.resolution,
        "eo:bands": [_eo_band(band)],
        "raster:bands": [raster_band],
    }


def _eo_band(band: DemoBand) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": band.name}
    if band.common_name is not None:
        entry.update(common_name=band.common_name, center_wavelength=band.center_wavelength,
                     full_width_half_max=band.full_width_half_max)
    else:
        entry["description"] = SCL_DESCRIPTION
    return entry


def _collection_document(collection_id: str, items: list[dict[str, Any]],
                         areas: tuple[DemoArea, ...] = AREAS) -> dict[str, Any]:
    boxes = [_round(transform_bounds(area.crs, "EPSG:4326", *area.bounds)) for area in areas]
    overall = [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]
    times = sorted(item["properties"]["datetime"] for item in items)
    # cube:dimensions declares one reference system: the first area's UTM zone, whose 10 m grid the
    # Bolzano data uses natively (extent in that CRS covers both areas); items elsewhere carry their
    # own zone in proj:epsg and load onto their own native grid.
    nominal = areas[0].crs
    native = [transform_bounds(area.crs, nominal, *area.bounds) for area in areas]
    cloud_covers = [item["properties"]["eo:cloud_cover"] for item in items]
    return {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "stac_extensions": [_EXTENSIONS[name] for name in ("datacube", "eo", "raster", "proj", "item_assets")],
        "id": collection_id,
        "title": "Sentinel-2 L2A (synthetic demo)",
        "description": (
            f"Synthetic, deterministic Sentinel-2 Level-2A-like surface reflectance for local development: "
            f"{_describe_areas(areas)}, every 5 days in June 2022 and early "
            "July. Bands B02, B03, B04, B08 at 10 m (uint16, scale 0.0001, no-data 0) and the scene "
            "classification SCL at 20 m. Not real observations."),
        "keywords": ["sentinel-2", "l2a", "demo", "synthetic"],
        "license": "CC0-1.0",
        "providers": [{"name": "Stratus (synthetic demo data)", "roles": ["producer", "processor", "host"]}],
        "extent": {
            "spatial": {"bbox": [overall, *boxes]},
            "temporal": {"interval": [[times[0], times[-1]]]},
        },
        "cube:dimensions": {
            "x": {"type": "spatial", "axis": "x", "extent": [min(b[0] for b in native), max(b[2] for b in native)],
                  "reference_system": nominal.to_epsg(), "step": PIXEL_SIZE},
            "y": {"type": "spatial", "axis": "y", "extent": [min(b[1] for b in native), max(b[3] for b in native)],
                  "reference_system": nominal.to_epsg(), "step": PIXEL_SIZE},
            "t": {"type": "temporal", "extent": [times[0], times[-1]], "step": None},
            "bands": {"type": "bands", "values": [band.name for band in BANDS]},
        },
        "summaries": {
            "eo:bands": [_eo_band(band) for band in BANDS],
            "gsd": sorted({band.resolution for band in BANDS}),
            "platform": ["sentinel-2a", "sentinel-2b"],
            "constellation": ["sentinel-2"],
            "instruments": ["msi"],
            "proj:epsg": [area.epsg for area in areas],
            "eo:cloud_cover": {"minimum": min(cloud_covers), "maximum": max(cloud_covers)},
        },
        "item_assets": {band.name: _asset_metadata(band) for band in BANDS},
        "links": [
            {"rel": "root", "href": "../../catalog.json", "type": "application/json"},
            {"rel": "parent", "href": "../../catalog.json", "type": "application/json"},
            *({"rel": "item", "href": f"./items/{item['id']}.json", "type": "application/geo+json"}
              for item in sorted(items, key=lambda i: i["id"])),
        ],
    }


def _describe_areas(areas: tuple[DemoArea, ...]) -> str:
    if areas == AREAS:
        return "two 3 × 3 km areas (Bolzano, EPSG:32632, and Vienna, EPSG:32633)"
    return ", ".join(f"{area.size * PIXEL_SIZE / 1000:g} × {area.size * PIXEL_SIZE / 1000:g} km around "
                     f"{area.name.capitalize()} (EPSG:{area.epsg})" for area in areas)


def _register_in_catalog(s3_client: Any, bucket: str, collection: dict[str, Any]) -> None:
    """Add (or refresh) the collection's `child` link in the root catalog, keeping other children."""
    key = catalog_layout.catalog_key()
    catalog = read_json(s3_client, bucket, key) or {
        "type": "Catalog", "stac_version": STAC_VERSION, "id": "stratus", "title": "Stratus data catalog",
        "description": "Collections available to Stratus processing.",
        "links": [{"rel": "root", "href": "./catalog.json", "type": "application/json"}],
    }
    href = "./" + catalog_layout.collection_key(collection["id"]).removeprefix(catalog_layout.STAC_ROOT + "/")
    links = [link for link in catalog.get("links", []) if not (link.get("rel") == "child" and link.get("href") == href)]
    links.append({"rel": "child", "href": href, "type": "application/json", "title": collection["title"]})
    catalog["links"] = links
    _put_json(s3_client, bucket, key, catalog)


def _put_json(s3_client: Any, bucket: str, key: str, document: dict[str, Any]) -> None:
    s3_client.put_object(Bucket=bucket, Key=key, Body=json.dumps(document, indent=1).encode(),
                         ContentType="application/json")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _round(bbox: tuple[float, ...]) -> list[float]:
    return [round(value, 7) for value in bbox]
