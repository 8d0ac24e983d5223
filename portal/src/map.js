// The map: an offline base layer (Natural Earth boundaries and a graticule, shipped with the portal), an
// optional online base layer from the configuration, the customer's area (drawn, uploaded or typed) and
// quicklooks of results as XYZ tile layers.
import Map from "ol/Map.js";
import View from "ol/View.js";
import GeoJSON from "ol/format/GeoJSON.js";
import TopoJSON from "ol/format/TopoJSON.js";
import Graticule from "ol/layer/Graticule.js";
import TileLayer from "ol/layer/Tile.js";
import VectorLayer from "ol/layer/Vector.js";
import XYZ from "ol/source/XYZ.js";
import VectorSource from "ol/source/Vector.js";
import Draw, { createBox } from "ol/interaction/Draw.js";
import { defaults as defaultControls } from "ol/control/defaults.js";
import ScaleLine from "ol/control/ScaleLine.js";
import { fromLonLat, transformExtent } from "ol/proj.js";
import { getArea } from "ol/sphere.js";
import { Fill, Stroke, Style } from "ol/style.js";
import "ol/ol.css";

const WGS84 = "EPSG:4326";
const MAP = "EPSG:3857";
const geojson = new GeoJSON({ dataProjection: WGS84, featureProjection: MAP });

export class PortalMap {
  constructor(target, config, onAreaChange) {
    this.onAreaChange = onAreaChange;
    this.area = new VectorSource();
    this.quicklook = null;
    const layers = [];
    if (config.baseLayer && config.baseLayer.url) {
      layers.push(new TileLayer({ source: new XYZ({ url: config.baseLayer.url, attributions: config.baseLayer.attribution, crossOrigin: "anonymous" }) }));
    }
    const countries = new VectorLayer({
      source: new VectorSource({ url: "countries.json", format: new TopoJSON({ layers: ["countries"] }) }),
      style: new Style({ fill: new Fill({ color: "#eef2e6" }), stroke: new Stroke({ color: "#5b6b5b", width: 1 }) }),
    });
    if (!layers.length) layers.push(countries);
    layers.push(new Graticule({ strokeStyle: new Stroke({ color: "rgba(0,0,0,0.25)", width: 1, lineDash: [2, 4] }), showLabels: true, wrapX: false }));
    this.areaLayer = new VectorLayer({
      source: this.area,
      style: new Style({ fill: new Fill({ color: "rgba(0, 90, 200, 0.06)" }), stroke: new Stroke({ color: "#0050b3", width: 2 }) }),
      zIndex: 10,
    });
    layers.push(this.areaLayer);
    const view = config.view || { center: [11.34, 46.49], zoom: 4 };
    this.map = new Map({
      target,
      layers,
      controls: defaultControls().extend([new ScaleLine()]),
      view: new View({ center: fromLonLat(view.center), zoom: view.zoom }),
    });
    this.area.on("change", () => this.onAreaChange(this.areaGeometry(), this.areaKm2()));
  }

  draw(kind) {
    this.stopDrawing();
    this.drawing = kind === "box" ? new Draw({ source: this.area, type: "Circle", geometryFunction: createBox() }) : new Draw({ source: this.area, type: "Polygon" });
    this.drawing.on("drawstart", () => this.area.clear());
    this.drawing.on("drawend", () => setTimeout(() => this.stopDrawing(), 0));
    this.map.addInteraction(this.drawing);
  }

  stopDrawing() {
    if (this.drawing) this.map.removeInteraction(this.drawing);
    this.drawing = null;
  }

  setArea(geometryOrFeature) {
    const features = geojson.readFeatures(geometryOrFeature);
    if (!features.length) throw new Error("The file holds no geometry.");
    this.area.clear();
    this.area.addFeature(features[0]);
    this.map.getView().fit(this.area.getExtent(), { padding: [40, 40, 40, 40], maxZoom: 15 });
  }

  setBbox(west, south, east, north) {
    this.setArea({ type: "Polygon", coordinates: [[[west, south], [east, south], [east, north], [west, north], [west, south]]] });
  }

  clearArea() {
    this.area.clear();
  }

  areaGeometry() {
    const feature = this.area.getFeatures()[0];
    return feature ? geojson.writeGeometryObject(feature.getGeometry(), { decimals: 6 }) : null;
  }

  areaKm2() {
    const feature = this.area.getFeatures()[0];
    return feature ? getArea(feature.getGeometry(), { projection: MAP }) / 1e6 : 0;
  }

  zoomTo(bbox) {
    this.map.getView().fit(transformExtent(bbox, WGS84, MAP), { padding: [20, 20, 20, 20], maxZoom: 15 });
  }

  showQuicklook(url, bbox) {
    this.hideQuicklook();
    this.quicklook = new TileLayer({ source: new XYZ({ url, crossOrigin: "anonymous", maxZoom: 18, transition: 0 }), zIndex: 11 });
    this.quicklook.set("name", "quicklook");
    this.map.addLayer(this.quicklook);
    if (bbox) this.zoomTo(bbox);
  }

  hideQuicklook() {
    if (this.quicklook) this.map.removeLayer(this.quicklook);
    this.quicklook = null;
  }

  // The quicklook's tiles: started, drawn and failed so far (the page shows them; the browser tests wait on them).
  onQuicklookTiles(callback) {
    if (!this.quicklook) return;
    const counts = { started: 0, loaded: 0, failed: 0 };
    const source = this.quicklook.getSource();
    for (const [event, key] of [["tileloadstart", "started"], ["tileloadend", "loaded"], ["tileloaderror", "failed"]]) {
      source.on(event, () => {
        counts[key] += 1;
        callback(counts);
      });
    }
  }
}
