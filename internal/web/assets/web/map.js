// A small slippy map: Web Mercator tiles as <img> elements and markers as <button>s. It is drawn
// here rather than with a map library so the hub needs no front-end build step; markers are real
// buttons (keyboard, screen readers) and everything but the tiles works offline.

const TILE = 256;
const MIN_ZOOM = 8, MAX_ZOOM = 18;

function project(lat, lon, zoom) {
  const ws = TILE * 2 ** zoom;
  const s = Math.sin(Math.max(-85, Math.min(85, lat)) * Math.PI / 180);
  return {x: (lon + 180) / 360 * ws, y: (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)) * ws};
}

function unproject(x, y, zoom) {
  const ws = TILE * 2 ** zoom;
  const lon = x / ws * 360 - 180;
  const n = Math.PI - 2 * Math.PI * y / ws;
  return {lat: 180 / Math.PI * Math.atan(Math.sinh(n)), lon};
}

export class TileMap {
  // root: an element to draw in; opts: {tileURL, attribution, onSelect(id)}.
  constructor(root, opts) {
    this.root = root;
    this.opts = opts;
    this.center = {lat: 55.751, lon: 37.618}; // the Kremlin: Moscow's centre
    this.zoom = 10;
    this.points = [];
    this.selected = null;
    this.origin = null;
    this.tiles = new Map();
    root.classList.add('map');
    this.tileLayer = document.createElement('div');
    this.tileLayer.className = 'map-tiles';
    this.tileLayer.setAttribute('aria-hidden', 'true');
    this.markerLayer = document.createElement('div');
    this.markerLayer.className = 'map-markers';
    const zoomIn = this.button('+', 'Приблизить', () => this.zoomBy(1));
    const zoomOut = this.button('−', 'Отдалить', () => this.zoomBy(-1));
    const controls = document.createElement('div');
    controls.className = 'map-controls';
    controls.append(zoomIn, zoomOut);
    const attr = document.createElement('div');
    attr.className = 'map-attribution';
    attr.textContent = opts.tileURL ? opts.attribution || '' : 'Подложка карты отключена';
    root.append(this.tileLayer, this.markerLayer, controls, attr);
    this.drag(root);
    root.addEventListener('wheel', (e) => { e.preventDefault(); this.zoomBy(e.deltaY < 0 ? 1 : -1); }, {passive: false});
    new ResizeObserver(() => this.render()).observe(root);
  }

  button(text, label, onclick) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = text;
    b.setAttribute('aria-label', label);
    b.title = label;
    b.addEventListener('click', onclick);
    return b;
  }

  drag(root) {
    let start = null;
    root.addEventListener('pointerdown', (e) => {
      if (e.target.closest('button')) return;
      start = {x: e.clientX, y: e.clientY, c: project(this.center.lat, this.center.lon, this.zoom)};
      root.setPointerCapture(e.pointerId);
    });
    root.addEventListener('pointermove', (e) => {
      if (!start) return;
      this.center = unproject(start.c.x - (e.clientX - start.x), start.c.y - (e.clientY - start.y), this.zoom);
      this.render();
    });
    const end = () => { start = null; };
    root.addEventListener('pointerup', end);
    root.addEventListener('pointercancel', end);
  }

  zoomBy(d) {
    this.zoom = Math.max(MIN_ZOOM, Math.min(MAX_ZOOM, this.zoom + d));
    this.render();
  }

  // setPoints: [{id, lat, lon, label, count}]; points without coordinates are not drawn.
  setPoints(points) {
    this.points = points.filter((p) => p.lat !== null && p.lon !== null);
    this.render();
  }

  setOrigin(o) {
    this.origin = o;
    this.render();
  }

  select(id) {
    this.selected = id;
    const p = this.points.find((x) => x.id === id);
    if (p) this.center = {lat: p.lat, lon: p.lon};
    this.render();
  }

  // fit centres and zooms the map on the points (and the origin).
  fit() {
    const pts = this.points.concat(this.origin ? [this.origin] : []);
    if (!pts.length) return;
    const w = this.root.clientWidth || 600, h = this.root.clientHeight || 400;
    for (let z = 16; z >= MIN_ZOOM; z--) {
      const ps = pts.map((p) => project(p.lat, p.lon, z));
      const xs = ps.map((p) => p.x), ys = ps.map((p) => p.y);
      if (Math.max(...xs) - Math.min(...xs) < w - 60 && Math.max(...ys) - Math.min(...ys) < h - 60 || z === MIN_ZOOM) {
        this.zoom = z;
        this.center = unproject((Math.max(...xs) + Math.min(...xs)) / 2, (Math.max(...ys) + Math.min(...ys)) / 2, z);
        break;
      }
    }
    this.render();
  }

  render() {
    const w = this.root.clientWidth, h = this.root.clientHeight;
    if (!w || !h) return;
    const c = project(this.center.lat, this.center.lon, this.zoom);
    const left = c.x - w / 2, top = c.y - h / 2;
    this.renderTiles(left, top, w, h);
    const frag = document.createDocumentFragment();
    for (const p of this.points) {
      const q = project(p.lat, p.lon, this.zoom);
      const x = q.x - left, y = q.y - top;
      if (x < -20 || y < -20 || x > w + 20 || y > h + 20) continue;
      const b = this.button(p.count > 1 ? String(p.count) : '', p.label, () => this.opts.onSelect(p.id));
      b.className = 'marker' + (p.id === this.selected ? ' selected' : '');
      b.dataset.id = p.id;
      if (p.id === this.selected) b.setAttribute('aria-pressed', 'true');
      b.style.left = x + 'px';
      b.style.top = y + 'px';
      frag.append(b);
    }
    if (this.origin) {
      const q = project(this.origin.lat, this.origin.lon, this.zoom);
      const o = document.createElement('div');
      o.className = 'origin';
      o.setAttribute('role', 'img');
      o.setAttribute('aria-label', 'Ваше местоположение');
      o.style.left = (q.x - left) + 'px';
      o.style.top = (q.y - top) + 'px';
      frag.append(o);
    }
    // Keep focus on a marker that is redrawn (a keyboard user pressing it).
    const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest('.marker');
    const focusID = focused ? focused.dataset.id : null;
    this.markerLayer.replaceChildren(frag);
    if (focusID) {
      const again = this.markerLayer.querySelector('[data-id="' + CSS.escape(focusID) + '"]');
      if (again) again.focus();
    }
  }

  renderTiles(left, top, w, h) {
    if (!this.opts.tileURL) return;
    const n = 2 ** this.zoom;
    const want = new Set();
    const frag = document.createDocumentFragment();
    for (let ty = Math.floor(top / TILE); ty * TILE < top + h; ty++) {
      if (ty < 0 || ty >= n) continue;
      for (let tx = Math.floor(left / TILE); tx * TILE < left + w; tx++) {
        const wx = ((tx % n) + n) % n;
        const key = this.zoom + '/' + tx + '/' + ty;
        want.add(key);
        let img = this.tiles.get(key);
        if (!img) {
          img = document.createElement('img');
          img.alt = '';
          img.decoding = 'async';
          img.draggable = false;
          // A tile that does not load leaves the plain background: the markers stay usable.
          img.onerror = () => { img.hidden = true; };
          img.src = this.opts.tileURL.replace('{z}', this.zoom).replace('{x}', wx).replace('{y}', ty)
            .replace('{s}', 'abc'[(wx + ty) % 3]);
          this.tiles.set(key, img);
        }
        img.style.left = (tx * TILE - left) + 'px';
        img.style.top = (ty * TILE - top) + 'px';
        frag.append(img);
      }
    }
    for (const k of [...this.tiles.keys()]) if (!want.has(k)) this.tiles.delete(k);
    this.tileLayer.replaceChildren(frag);
  }
}
