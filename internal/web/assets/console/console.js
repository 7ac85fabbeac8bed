// The contact-centre console. Every call carries the operator's token (kept in sessionStorage, so
// it ends with the tab) and, for anything about a resident, the purpose the operator declared.
// The caller's national id stays in the form: it is sent in request bodies, never in a URL, and
// never stored by the page.
import {el, api, ApiError, config, categoryOptions, termIDs, listServices, getService, pointsOf, formatAddress,
  hoursOf, formatSchedule, phonesOf, telHref} from '/web/hsds.js';

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = 'socialhub.operator-token';
let cfg;

function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }
function purpose() { return $('purpose').value; }
function describe(e) { return e instanceof ApiError ? e.describe() : e.message; }

async function main() {
  cfg = await config();
  categoryOptions($('search-category'), cfg.taxonomy, 'Все категории');
  $('signin-form').addEventListener('submit', (e) => { e.preventDefault(); signIn($('token').value.trim()); });
  $('signout').addEventListener('click', signOut);
  $('search-form').addEventListener('submit', (e) => { e.preventDefault(); search(); });
  $('caller-form').addEventListener('submit', (e) => { e.preventDefault(); checkCaller(); });
  $('caller-clear').addEventListener('click', clearCaller);
  $('case-form').addEventListener('submit', (e) => { e.preventDefault(); findCase($('case-number').value.trim()); });
  if (token()) await signIn(token());
}

async function signIn(t) {
  $('signin-error').textContent = '';
  try {
    const me = await api('/v1/whoami', {token: t});
    sessionStorage.setItem(TOKEN_KEY, t);
    $('token').value = '';
    $('who').textContent = 'Оператор: ' + me.name;
    const sel = $('purpose');
    sel.replaceChildren(...(me.purposes || []).map((p) => el('option', {value: p}, p)));
    $('signin').hidden = true;
    $('work').hidden = false;
    $('search-title').focus();
  } catch (e) {
    sessionStorage.removeItem(TOKEN_KEY);
    $('signin-error').textContent = e instanceof ApiError && e.status === 401 ? 'Токен не принят: он неизвестен или отозван.' : 'Вход не удался: ' + describe(e);
  }
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  clearCaller();
  $('who').textContent = '';
  $('work').hidden = true;
  $('signin').hidden = false;
  $('token').focus();
}

// A 401 mid-session means the token was revoked: back to sign-in.
function authFailed(e) {
  if (e instanceof ApiError && e.status === 401) { signOut(); $('signin-error').textContent = 'Сеанс завершён: войдите снова.'; return true; }
  return false;
}

async function search() {
  const cat = $('search-category').value;
  const text = $('search-text').value.trim();
  $('search-status').textContent = 'Поиск…';
  try {
    const list = await listServices(cat ? termIDs(cfg.taxonomy, cat) : [], text);
    $('search-status').textContent = 'Найдено услуг: ' + list.length;
    $('search-results').replaceChildren(...list.slice(0, 200).map((s) => {
      const more = el('div', {class: 'service-details'});
      return el('li', {'data-id': s.id},
        el('strong', {}, s.name), ' — ', s.organization?.name || '',
        ' ', el('button', {type: 'button', class: 'secondary', 'aria-expanded': 'false', onclick: (e) => toggleDetails(e.currentTarget, s.id, more)}, 'Подробнее'),
        more);
    }));
  } catch (e) {
    $('search-status').textContent = 'Поиск не удался: ' + describe(e);
  }
}

async function toggleDetails(button, id, box) {
  if (button.getAttribute('aria-expanded') === 'true') {
    button.setAttribute('aria-expanded', 'false');
    box.replaceChildren();
    return;
  }
  button.setAttribute('aria-expanded', 'true');
  const s = await getService(id);
  if (!s) { box.replaceChildren(el('p', {}, 'Услуги больше нет в каталоге.')); return; }
  box.replaceChildren(el('ul', {}, pointsOf(s).map((p) => el('li', {},
    formatAddress(p.address), p.district ? ' (' + p.district + ')' : '',
    phonesOf(s, p.sal).map((x) => [' · ', el('a', {href: telHref(x.number)}, x.number)]),
    hoursOf(s, p.sal).map((h) => [' · ', formatSchedule(h)])))),
  s.description ? el('p', {}, s.description) : null);
}

async function checkCaller() {
  const nationalID = $('national-id').value.trim();
  const caseID = $('caller-case').value.trim();
  $('caller-status').textContent = 'Проверка…';
  $('eligible').replaceChildren();
  $('apply').hidden = true;
  try {
    const q = caseID ? '?case_id=' + encodeURIComponent(caseID) : '';
    const out = await api('/v1/residents/eligible-services' + q, {method: 'POST', token: token(), purpose: purpose(),
      body: {subject: {national_id: nationalID}}});
    const list = out.services || [];
    $('caller-status').textContent = list.length
      ? 'Доступно услуг: ' + list.length + ' (данные реестра на ' + out.as_of + ').'
      : 'Житель есть в реестре, но доступных по правилам услуг не найдено (данные на ' + out.as_of + ').';
    $('eligible').replaceChildren(...list.map((s) => el('li', {'data-id': s.id},
      el('strong', {}, s.name),
      el('p', {class: 'why'}, 'Почему: ', s.rule.explanation || s.rule.id, ' ', el('code', {}, '(' + s.rule.id + ')')),
      el('button', {type: 'button', class: 'secondary', onclick: () => applicationForm(s)}, 'Подать заявление'))));
  } catch (e) {
    if (authFailed(e)) return;
    $('caller-status').textContent = e instanceof ApiError && e.status === 404
      ? 'Житель с таким СНИЛС в реестре не найден.' : 'Проверка не удалась: ' + describe(e);
  }
}

function clearCaller() {
  $('national-id').value = '';
  $('caller-case').value = '';
  $('caller-status').textContent = '';
  $('eligible').replaceChildren();
  $('apply').hidden = true;
  $('apply').replaceChildren();
}

// applicationForm files an application for the caller: POST /v1/applications.
function applicationForm(service) {
  const box = $('apply');
  const request = el('textarea', {id: 'apply-request', rows: '3', required: true});
  const channel = el('select', {id: 'apply-channel'}, el('option', {value: 'phone'}, 'телефон'), el('option', {value: 'chat'}, 'чат'),
    el('option', {value: 'in_person'}, 'лично'));
  const contact = el('select', {id: 'apply-contact'}, el('option', {value: 'phone'}, 'звонок'), el('option', {value: 'sms'}, 'СМС'),
    el('option', {value: 'email'}, 'эл. почта'), el('option', {value: 'post'}, 'письмо'));
  const result = el('div', {id: 'apply-result', role: 'status', 'aria-live': 'polite'});
  const form = el('form', {id: 'apply-form'},
    el('label', {}, 'Что просит житель', request),
    el('label', {}, 'Канал', channel),
    el('label', {}, 'Как связаться', contact),
    el('button', {type: 'submit'}, 'Отправить заявление'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    result.textContent = 'Отправка…';
    try {
      const out = await api('/v1/applications', {method: 'POST', token: token(), purpose: purpose(), body: {
        resident: {national_id: $('national-id').value.trim()}, service_id: service.id, channel: channel.value,
        request: request.value.trim(), contact_preference: contact.value, purpose: purpose()}});
      result.replaceChildren(el('p', {}, 'Заявление принято. Номер дела: ', el('strong', {id: 'filed-case'}, out.case_number),
        out.routed_to ? '. Направлено: ' + (out.routed_to.name || out.routed_to.id || out.routed_to) : '',
        out.eligible === false ? '. Внимание: по правилам житель не подходит' + (out.rule ? ' (' + (out.rule.id || out.rule) + ')' : '') : ''),
      el('button', {type: 'button', class: 'secondary', onclick: () => { $('case-number').value = out.case_number; findCase(out.case_number); }}, 'Открыть дело'));
    } catch (err) {
      if (authFailed(err)) return;
      result.replaceChildren(el('p', {class: 'error', role: 'alert'}, 'Заявление не принято: ' + describe(err)));
    }
  });
  box.replaceChildren(el('h3', {}, 'Заявление: ' + service.name), form, result);
  box.hidden = false;
  request.focus();
}

const EVENT_FIELDS = ['status', 'event', 'action', 'note', 'comment', 'message', 'by', 'actor'];

async function findCase(number) {
  if (!number) return;
  $('case-status').textContent = 'Поиск…';
  $('case').replaceChildren();
  try {
    const c = await api('/v1/cases/' + encodeURIComponent(number), {token: token(), purpose: purpose()});
    $('case-status').textContent = 'Дело найдено.';
    const history = c.history || c.events || [];
    $('case').replaceChildren(
      el('dl', {}, ...['case_number', 'status', 'service_id', 'channel', 'created_at', 'updated_at'].filter((k) => c[k] !== undefined)
        .map((k) => [el('dt', {}, caseLabel(k)), el('dd', {}, String(c[k]))])),
      el('h3', {}, 'История'),
      el('table', {id: 'case-history'},
        el('thead', {}, el('tr', {}, el('th', {scope: 'col'}, 'Когда'), el('th', {scope: 'col'}, 'Что'))),
        el('tbody', {}, history.map((h) => el('tr', {},
          el('td', {}, h.at || h.time || h.created_at || ''),
          el('td', {}, EVENT_FIELDS.filter((k) => h[k]).map((k) => (typeof h[k] === 'object' ? JSON.stringify(h[k]) : h[k])).join(' · ')))))));
  } catch (e) {
    if (authFailed(e)) return;
    $('case-status').textContent = e instanceof ApiError && e.status === 404 ? 'Дело с таким номером не найдено.' : 'Поиск не удался: ' + describe(e);
  }
}

function caseLabel(k) {
  return {case_number: 'Номер', status: 'Статус', service_id: 'Услуга', channel: 'Канал', created_at: 'Создано', updated_at: 'Обновлено'}[k] || k;
}

main().catch((e) => { $('signin-error').textContent = 'Ошибка загрузки консоли: ' + e.message; });
