// Shared by the navigator and the console: the hub's API, HSDS documents, opening hours, and
// safe DOM building (text only: nothing from the API is ever parsed as HTML).

// el builds an element: el('a', {href: url, class: 'x'}, 'text', child, ...).
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// ApiError carries the hub's error body: {error, fields: [{field, message}]}.
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || ('HTTP ' + status));
    this.status = status;
    this.fields = (body && body.fields) || [];
  }
  describe() {
    const f = this.fields.map((x) => x.field + ': ' + x.message).join('; ');
    return f ? this.message + ' (' + f + ')' : this.message;
  }
}

// api fetches JSON from the hub; it throws ApiError on a 4xx or 5xx.
export async function api(path, {method = 'GET', body, token, purpose, signal} = {}) {
  const headers = {Accept: 'application/json'};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = 'Bearer ' + token;
  if (purpose) headers['X-Purpose'] = purpose;
  const res = await fetch(path, {method, headers, signal, cache: 'no-store',
    body: body === undefined ? undefined : JSON.stringify(body)});
  let data = null;
  if (res.status !== 204) {
    try { data = await res.json(); } catch (_) { data = null; }
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

let configPromise;
// config is the page configuration: tiles, taxonomy, okrugs and districts.
export function config() {
  configPromise = configPromise || api('/web/config.json');
  return configPromise;
}

// termIDs returns a term and its descendants: choosing a category shows its sub-categories too.
export function termIDs(taxonomy, id) {
  const out = [id];
  for (let i = 0; i < out.length; i++) {
    for (const t of taxonomy) if (t.parent_id === out[i]) out.push(t.id);
  }
  return out;
}

// categoryOptions fills a <select> with the taxonomy, sub-categories indented under their parent.
export function categoryOptions(select, taxonomy, placeholder) {
  select.replaceChildren(el('option', {value: ''}, placeholder));
  const walk = (parent, depth) => {
    for (const t of taxonomy.filter((x) => (x.parent_id || '') === parent)) {
      select.append(el('option', {value: t.id}, '\u00a0\u00a0'.repeat(depth) + t.name));
      walk(t.id, depth + 1);
    }
  };
  walk('', 0);
}

// listServices returns every service of the terms (all pages), as HSDS service_list items.
export async function listServices(terms, search, signal) {
  const seen = new Map();
  for (const term of terms.length ? terms : ['']) {
    for (let page = 1; ; page++) {
      const q = new URLSearchParams({per_page: '500', page: String(page)});
      if (term) q.set('taxonomy_term_id', term);
      if (search) q.set('search', search);
      const p = await api('/services?' + q, {signal});
      for (const s of p.contents) seen.set(s.id, s);
      if (p.last_page || !p.contents.length) break;
    }
  }
  return [...seen.values()];
}

// getService returns a service as HSDS service_full, or null when the catalog no longer has it.
export async function getService(id, signal) {
  try {
    return await api('/services/' + encodeURIComponent(id), {signal});
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return null;
    throw e;
  }
}

// getServices fetches several services, a few at a time: the hub serves each from one query.
export async function getServices(ids, signal, parallel = 6) {
  const out = new Map();
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const id = ids[next++];
      out.set(id, await getService(id, signal));
    }
  };
  await Promise.all(Array.from({length: Math.min(parallel, ids.length)}, worker));
  return out;
}

export function serviceTerms(s) {
  return (s.attributes || []).map((a) => a.taxonomy_term_id).filter(Boolean);
}

// addressOf returns a location's physical address (or its first).
export function addressOf(loc) {
  const as = (loc && loc.addresses) || [];
  return as.find((a) => a.address_type === 'physical') || as[0] || null;
}

export function formatAddress(a) {
  if (!a) return '';
  return [a.address_1, a.address_2, a.city].filter(Boolean).join(', ');
}

// pointsOf returns the places a service is delivered at: one per service_at_location.
export function pointsOf(s) {
  return (s.service_at_locations || []).filter((sal) => sal.location).map((sal) => {
    const loc = sal.location;
    const a = addressOf(loc);
    const lat = Number(loc.latitude), lon = Number(loc.longitude);
    return {
      id: loc.id, sal, location: loc, address: a,
      lat: Number.isFinite(lat) && loc.latitude !== null && loc.latitude !== undefined ? lat : null,
      lon: Number.isFinite(lon) && loc.longitude !== null && loc.longitude !== undefined ? lon : null,
      district: (a && a.district) || '', okrug: (a && a.okrug) || '',
    };
  });
}

// Opening hours. HSDS schedules give byday (MO,TU,...), opens_at and closes_at; the city keeps
// Moscow time (UTC+3 all year), whatever the browser's time zone.
const DAYS = ['SU', 'MO', 'TU', 'WE', 'TH', 'FR', 'SA'];
const DAY_NAMES = {MO: 'пн', TU: 'вт', WE: 'ср', TH: 'чт', FR: 'пт', SA: 'сб', SU: 'вс'};
const WEEK = ['MO', 'TU', 'WE', 'TH', 'FR', 'SA', 'SU'];

export function moscowNow(now = new Date()) {
  const m = new Date(now.getTime() + 3 * 3600 * 1000);
  return {day: DAYS[m.getUTCDay()], minutes: m.getUTCHours() * 60 + m.getUTCMinutes()};
}

function minutesOf(t) {
  const m = /^(\d{1,2}):(\d{2})/.exec(t || '');
  return m ? Number(m[1]) * 60 + Number(m[2]) : null;
}

function daysOf(s) {
  return (s.byday || '').split(',').map((d) => d.trim().toUpperCase().replace(/^[-+]?\d+/, '')).filter((d) => DAY_NAMES[d]);
}

// hoursOf returns the schedules that apply to a service at a point: the point's own, else the
// service's, else the location's.
export function hoursOf(service, sal) {
  for (const list of [sal && sal.schedules, service && service.schedules, sal && sal.location && sal.location.schedules]) {
    if (list && list.length) return list;
  }
  return [];
}

// openNow says whether any schedule is open at now: true, false, or null when unknown.
export function openNow(schedules, now = new Date()) {
  const {day, minutes} = moscowNow(now);
  let known = false;
  for (const s of schedules) {
    const o = minutesOf(s.opens_at), c = minutesOf(s.closes_at);
    const days = daysOf(s);
    if (o === null || c === null || (!days.length && s.freq !== 'DAILY')) continue;
    known = true;
    if ((days.length ? days.includes(day) : true) && minutes >= o && (c <= o ? true : minutes < c)) return true;
  }
  return known ? false : null;
}

function dayRanges(days) {
  const idx = days.map((d) => WEEK.indexOf(d)).sort((a, b) => a - b);
  const parts = [];
  for (let i = 0; i < idx.length; i++) {
    let j = i;
    while (j + 1 < idx.length && idx[j + 1] === idx[j] + 1) j++;
    parts.push(j - i >= 2 ? DAY_NAMES[WEEK[idx[i]]] + '–' + DAY_NAMES[WEEK[idx[j]]]
      : idx.slice(i, j + 1).map((k) => DAY_NAMES[WEEK[k]]).join(', '));
    i = j;
  }
  return parts.join(', ');
}

// formatSchedule renders a schedule in Russian: «пн–пт 09:00–18:00».
export function formatSchedule(s) {
  const days = daysOf(s);
  const o = (s.opens_at || '').slice(0, 5), c = (s.closes_at || '').slice(0, 5);
  const parts = [];
  if (days.length) parts.push(dayRanges(days));
  else if (s.freq === 'DAILY') parts.push('ежедневно');
  if (o && c) parts.push(o + '–' + c);
  const text = parts.join(' ');
  return [text, s.description && s.description !== text ? s.description : ''].filter(Boolean).join('. ') || 'часы работы не указаны';
}

export function openBadge(state) {
  if (state === null) return null;
  return el('span', {class: state ? 'badge open' : 'badge closed'}, state ? 'Открыто сейчас' : 'Закрыто сейчас');
}

// phonesOf gathers a point's phones: the point's, the service's, the location's.
export function phonesOf(service, sal) {
  const seen = new Set();
  const out = [];
  for (const list of [sal && sal.phones, service.phones, sal && sal.location && sal.location.phones]) {
    for (const p of list || []) {
      if (p.number && !seen.has(p.number)) { seen.add(p.number); out.push(p); }
    }
  }
  return out;
}

export function telHref(number) {
  return 'tel:' + number.replace(/[^\d+]/g, '');
}

// safeURL returns an http(s) URL, or null: a catalog value never becomes a javascript: link.
export function safeURL(u) {
  try {
    const url = new URL(u);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
  } catch (_) {
    return null;
  }
}

// routeLinks are the ways to open a route to a point in the user's map app.
export function routeLinks(lat, lon, name) {
  const ll = lat.toFixed(6) + ',' + lon.toFixed(6);
  return [
    {label: 'Маршрут в приложении карт', href: 'geo:' + ll + '?q=' + ll + '(' + encodeURIComponent(name) + ')'},
    {label: 'Маршрут в Яндекс Картах', href: 'https://yandex.ru/maps/?rtext=~' + ll + '&rtt=auto'},
    {label: 'Маршрут в OpenStreetMap', href: 'https://www.openstreetmap.org/directions?to=' + encodeURIComponent(ll)},
  ];
}

// distanceKm is the great-circle distance.
export function distanceKm(a, b) {
  const r = Math.PI / 180;
  const dLat = (b.lat - a.lat) * r, dLon = (b.lon - a.lon) * r;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * r) * Math.cos(b.lat * r) * Math.sin(dLon / 2) ** 2;
  return 12742 * Math.asin(Math.sqrt(h));
}

export function formatDistance(km) {
  return km < 1 ? Math.round(km * 1000) + ' м' : km.toFixed(1).replace('.', ',') + ' км';
}

// parsePoint reads «55.75, 37.62» (or with a semicolon or spaces) as a point in Moscow's region.
export function parsePoint(text) {
  const m = /^\s*(-?\d+(?:[.,]\d+)?)\s*[,; ]\s*(-?\d+(?:[.,]\d+)?)\s*$/.exec(text || '');
  if (!m) return null;
  const lat = Number(m[1].replace(',', '.')), lon = Number(m[2].replace(',', '.'));
  if (!(lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180)) return null;
  return {lat, lon};
}

// watchChanges follows the hub's change stream; onChange gets each change event. EventSource
// reconnects by itself and resumes after the last event id it saw.
export function watchChanges(onChange, onState) {
  const es = new EventSource('/v1/changes/stream');
  es.onmessage = (m) => {
    try { onChange(JSON.parse(m.data)); } catch (_) { /* a malformed frame is skipped */ }
  };
  es.onopen = () => onState && onState(true);
  es.onerror = () => onState && onState(false);
  return es;
}
