// The services navigator: a category, points on a map and in a list, details of a point, kept
// current by the hub's change stream. It reads only the public HSDS API.
import {
  el, api, config, termIDs, categoryOptions, listServices, getService, getServices, serviceTerms, pointsOf,
  formatAddress, hoursOf, openNow, openBadge, formatSchedule, phonesOf, telHref, safeURL, routeLinks,
  distanceKm, formatDistance, parsePoint, watchChanges,
} from '/web/hsds.js';
import {TileMap} from '/web/map.js';

const $ = (id) => document.getElementById(id);
const state = {cfg: null, terms: [], services: new Map(), origin: null, selected: null, loadSeq: 0};
let map;

function say(text) { $('status').textContent = text; }

async function main() {
  const cfg = state.cfg = await config();
  categoryOptions($('category'), cfg.taxonomy, 'Выберите категорию');
  for (const o of cfg.okrugs) $('okrug').append(el('option', {value: o.short}, o.short + ' — ' + o.name));
  fillDistricts();
  map = new TileMap($('map'), {tileURL: cfg.tile_url, attribution: cfg.tile_attribution, onSelect: (id) => openPoint(id)});
  $('category').addEventListener('change', () => loadCategory());
  $('okrug').addEventListener('change', () => { fillDistricts(); filtersChanged(); });
  $('district').addEventListener('change', () => filtersChanged());
  $('locate').addEventListener('click', locate);
  $('use-point').addEventListener('click', usePoint);
  $('point').addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); usePoint(); } });
  $('filters').addEventListener('submit', (e) => e.preventDefault());
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && !$('details').hidden) closeDetails(); });
  watchChanges(onChange, (up) => { $('live').textContent = up ? 'Обновления: на связи' : 'Обновления: переподключение…'; });
  const initial = new URLSearchParams(location.search).get('category');
  if (initial && cfg.taxonomy.some((t) => t.id === initial)) {
    $('category').value = initial;
    loadCategory();
  } else {
    say('Выберите категорию услуг.');
  }
}

function fillDistricts() {
  const okrug = $('okrug').value;
  const keep = $('district').value;
  const sel = $('district');
  sel.replaceChildren(el('option', {value: ''}, 'Все районы'));
  for (const d of state.cfg.districts) {
    if (!okrug || d.okrug === okrug) sel.append(el('option', {value: d.name}, d.name));
  }
  if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
}

// report tells the hub's analytics what was searched: the category and place filter, nothing more.
function report() {
  const category = $('category').value;
  if (!category) return;
  api('/v1/stats/searches', {method: 'POST', body: {category, okrug: $('okrug').value, district: $('district').value}})
    .catch(() => { /* analytics never get in a resident's way */ });
}

function filtersChanged() {
  report();
  render();
}

async function loadCategory() {
  const category = $('category').value;
  closeDetails(false);
  state.services = new Map();
  if (!category) { render(); say('Выберите категорию услуг.'); return; }
  const seq = ++state.loadSeq;
  state.terms = termIDs(state.cfg.taxonomy, category);
  say('Загрузка…');
  report();
  try {
    const brief = await listServices(state.terms, '');
    const full = await getServices(brief.map((s) => s.id));
    if (seq !== state.loadSeq) return; // a newer choice won
    for (const [id, s] of full) if (s) state.services.set(id, s);
    render(true);
  } catch (e) {
    if (seq === state.loadSeq) say('Не удалось загрузить услуги: ' + (e.describe ? e.describe() : e.message));
  }
}

// points groups the category's services by the place they are delivered at, filtered by okrug
// and district, nearest first when an origin is set.
function points() {
  const okrug = $('okrug').value, district = $('district').value;
  const byLoc = new Map();
  for (const s of state.services.values()) {
    for (const p of pointsOf(s)) {
      if (okrug && p.okrug !== okrug) continue;
      if (district && p.district !== district) continue;
      let g = byLoc.get(p.id);
      if (!g) { g = {...p, items: []}; byLoc.set(p.id, g); }
      g.items.push({service: s, sal: p.sal});
    }
  }
  const out = [...byLoc.values()];
  for (const p of out) {
    p.name = p.location.name || p.items[0].service.organization?.name || p.items[0].service.name;
    p.distance = state.origin && p.lat !== null ? distanceKm(state.origin, p) : null;
    p.open = openNow(p.items.flatMap((i) => hoursOf(i.service, i.sal)));
  }
  out.sort((a, b) => (a.distance ?? Infinity) - (b.distance ?? Infinity) || a.name.localeCompare(b.name, 'ru'));
  return out;
}

function render(fit) {
  const ps = points();
  state.points = ps;
  map.setPoints(ps.map((p) => ({id: p.id, lat: p.lat, lon: p.lon, count: p.items.length,
    label: p.name + ', ' + formatAddress(p.address) + (p.items.length > 1 ? ', услуг: ' + p.items.length : '')})));
  if (fit) map.fit();
  const list = $('list');
  list.replaceChildren(...ps.map((p) => el('li', {'data-id': p.id},
    el('button', {type: 'button', class: 'point' + (p.id === state.selected ? ' selected' : ''), onclick: () => openPoint(p.id),
      'aria-current': p.id === state.selected ? 'true' : null},
    el('span', {class: 'point-name'}, p.name),
    el('span', {class: 'point-address'}, formatAddress(p.address)),
    el('span', {class: 'point-services'}, p.items.map((i) => i.service.name).join('; ')),
    el('span', {class: 'point-meta'}, p.distance !== null ? formatDistance(p.distance) : null, openBadge(p.open))))));
  if ($('category').value) {
    say(ps.length ? 'Найдено мест: ' + ps.length + (state.origin ? ', ближайшие сначала.' : '.') : 'В этой категории по выбранному району мест не найдено.');
  }
  if (state.selected && !ps.some((p) => p.id === state.selected)) closeDetails(false);
}

async function openPoint(id) {
  const p = (state.points || []).find((x) => x.id === id);
  if (!p) return;
  state.selected = id;
  map.select(id);
  render();
  const d = $('details');
  d.hidden = false;
  const first = p.items[0];
  const org = first.service.organization || {};
  const phones = p.items.flatMap((i) => phonesOf(i.service, i.sal));
  const emails = [...new Set(p.items.map((i) => i.service.email || org.email).filter(Boolean))];
  const sites = [...new Set(p.items.map((i) => safeURL(i.service.url || org.website || org.url || '')).filter(Boolean))];
  const hours = p.items.flatMap((i) => hoursOf(i.service, i.sal));
  const others = el('ul', {class: 'others', id: 'others'}, el('li', {}, 'Загрузка…'));
  d.replaceChildren(
    el('button', {type: 'button', class: 'close', onclick: () => closeDetails(true), 'aria-label': 'Закрыть'}, '×'),
    el('h2', {id: 'details-title'}, p.name),
    org.name && org.name !== p.name ? el('p', {class: 'org'}, org.name) : null,
    el('p', {class: 'address'}, formatAddress(p.address), p.district ? ' (' + [p.district, p.okrug].filter(Boolean).join(', ') + ')' : ''),
    el('h3', {}, 'Услуги в этой категории'),
    el('ul', {}, p.items.map((i) => el('li', {}, i.service.name))),
    el('h3', {}, 'Контакты'),
    el('ul', {class: 'contacts'},
      [...new Map(phones.map((x) => [x.number, x])).values()].map((x) => el('li', {}, 'Телефон: ', el('a', {href: telHref(x.number)}, x.number + (x.extension ? ' доб. ' + x.extension : '')))),
      emails.map((m) => el('li', {}, 'Эл. почта: ', el('a', {href: 'mailto:' + m}, m))),
      sites.map((u) => el('li', {}, 'Сайт: ', el('a', {href: u, rel: 'noopener noreferrer', target: '_blank'}, u))),
      !phones.length && !emails.length && !sites.length ? el('li', {}, 'Контакты не указаны') : null),
    el('h3', {}, 'Часы работы ', openBadge(openNow(hours))),
    el('ul', {class: 'hours'}, [...new Set(hours.map(formatSchedule))].map((h) => el('li', {}, h)), hours.length ? null : el('li', {}, 'Часы работы не указаны')),
    p.lat !== null ? el('p', {class: 'route'}, routeLinks(p.lat, p.lon, p.name).map((r) => el('a', {href: r.href, rel: 'noopener noreferrer', target: r.href.startsWith('geo:') ? null : '_blank'}, r.label))) : null,
    el('h3', {}, 'Все услуги по этому адресу'),
    others);
  d.focus();
  try {
    const all = await servicesAt(p);
    if (state.selected !== id) return;
    others.replaceChildren(...all.map((s) => el('li', {}, s.name, ' ', el('span', {class: 'muted'}, '— ' + (s.organization?.name || '')))));
  } catch (e) {
    others.replaceChildren(el('li', {}, 'Не удалось загрузить: ' + e.message));
  }
}

// servicesAt finds every service delivered at the point, in any category: the organizations there
// list their services, and a service's own record says where it is delivered.
async function servicesAt(p) {
  const found = new Map(p.items.map((i) => [i.service.id, i.service]));
  const orgIDs = [...new Set(p.items.map((i) => i.service.organization_id || i.service.organization?.id).filter(Boolean))];
  const candidates = new Set();
  for (const id of orgIDs) {
    const org = await api('/organizations/' + encodeURIComponent(id));
    for (const s of org.services || []) if (!found.has(s.id)) candidates.add(s.id);
  }
  const docs = await getServices([...candidates]);
  for (const s of docs.values()) {
    if (s && pointsOf(s).some((q) => q.id === p.id)) found.set(s.id, s);
  }
  return [...found.values()].sort((a, b) => a.name.localeCompare(b.name, 'ru'));
}

function closeDetails(returnFocus) {
  const was = state.selected;
  state.selected = null;
  $('details').hidden = true;
  $('details').replaceChildren();
  if (map) map.select(null);
  if (returnFocus && was) {
    const b = document.querySelector('#list li[data-id="' + CSS.escape(was) + '"] button');
    if (b) b.focus();
  }
}

function setOrigin(o, how) {
  state.origin = o;
  map.setOrigin(o);
  render(true);
  say($('status').textContent + ' Точка отсчёта: ' + how + '.');
}

function locate() {
  if (!navigator.geolocation) { say('Браузер не сообщает местоположение: введите точку вручную.'); return; }
  say('Определяем местоположение…');
  navigator.geolocation.getCurrentPosition(
    (pos) => setOrigin({lat: pos.coords.latitude, lon: pos.coords.longitude}, 'ваше местоположение'),
    () => say('Местоположение недоступно: введите точку вручную, например 55.75, 37.62.'),
    {enableHighAccuracy: false, timeout: 10000, maximumAge: 60000});
}

function usePoint() {
  const o = parsePoint($('point').value);
  if (!o) {
    $('point').setAttribute('aria-invalid', 'true');
    say('Точка не распознана: введите широту и долготу через запятую, например 55.75, 37.62.');
    $('point').focus();
    return;
  }
  $('point').removeAttribute('aria-invalid');
  setOrigin(o, 'введённая точка');
}

// onChange applies a catalog change: a service is re-read (and dropped if it is gone or left the
// category); a change of a place or organization re-reads the services that use it.
let pendingReload = null;
async function onChange(ev) {
  if (!$('category').value) return;
  const ids = new Set();
  if (ev.entity_type === 'service') ids.add(ev.id);
  for (const s of state.services.values()) {
    if (s.organization_id === ev.id || (s.service_at_locations || []).some((x) => x.id === ev.id || x.location_id === ev.id || x.location?.id === ev.id)) ids.add(s.id);
  }
  if (!ids.size) {
    // A new place of a service not shown yet: re-list the category once the burst is over.
    if (ev.entity_type === 'service_at_location' && ev.op !== 'deleted') {
      clearTimeout(pendingReload);
      pendingReload = setTimeout(refreshList, 500);
    }
    return;
  }
  const seq = state.loadSeq;
  const docs = await getServices([...ids]);
  if (seq !== state.loadSeq) return;
  let changed = false;
  for (const [id, s] of docs) {
    const inCategory = s && serviceTerms(s).some((t) => state.terms.includes(t));
    if (inCategory) { state.services.set(id, s); changed = true; } else if (state.services.delete(id)) changed = true;
  }
  if (changed) {
    render();
    if (state.selected && state.points.some((p) => p.id === state.selected)) openPoint(state.selected);
  }
}

async function refreshList() {
  const seq = state.loadSeq;
  const brief = await listServices(state.terms, '');
  const missing = brief.map((s) => s.id).filter((id) => !state.services.has(id));
  const docs = await getServices(missing);
  if (seq !== state.loadSeq) return;
  for (const [id, s] of docs) if (s) state.services.set(id, s);
  if (docs.size) render();
}

main().catch((e) => say('Ошибка загрузки навигатора: ' + e.message));
