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
  const channel = el('select', {id: 'apply-channel'}, el('option', {value: 'phone'}, 'телефон'), el('option', {value: 'chatbot'}, 'чат-бот'),
    el('option', {value: 'messenger'}, 'мессенджер'), el('option', {value: 'text_relay'}, 'текстовый релей (для людей с нарушением слуха)'),
    el('option', {value: 'web'}, 'сайт'));
  const contact = el('select', {id: 'apply-contact'}, el('option', {value: 'phone'}, 'звонок'), el('option', {value: 'sms'}, 'СМС'),
    el('option', {value: 'email'}, 'эл. почта'), el('option', {value: 'messenger'}, 'мессенджер'),
    el('option', {value: 'text_relay'}, 'текстовый релей'), el('option', {value: 'post'}, 'письмо'));
  const contactValue = el('input', {id: 'apply-contact-value', type: 'text', autocomplete: 'off'});
  const result = el('div', {id: 'apply-result', role: 'status', 'aria-live': 'polite'});
  const form = el('form', {id: 'apply-form'},
    el('label', {}, 'Что просит житель', request),
    el('label', {}, 'Канал', channel),
    el('label', {}, 'Как связаться', contact),
    el('label', {}, 'Номер или адрес для связи', contactValue),
    el('button', {type: 'submit'}, 'Отправить заявление'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    result.textContent = 'Отправка…';
    try {
      const out = await api('/v1/applications', {method: 'POST', token: token(), purpose: purpose(), body: {
        resident: {national_id: $('national-id').value.trim()}, service_id: service.id, channel: channel.value,
        request: request.value.trim(), contact: {method: contact.value, value: contactValue.value.trim()}}});
      result.replaceChildren(el('p', {}, 'Заявление принято. Номер дела: ', el('strong', {id: 'filed-case'}, out.case_number),
        out.organization && out.organization.name ? '. Направлено: ' + out.organization.name : '',
        out.eligibility && out.eligibility.eligible === false
          ? '. Внимание: по правилам житель не подходит: ' + out.eligibility.rules.filter((r) => !r.eligible).map((r) => r.explanation).join('; ')
          : ''),
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

const EVENT_FIELDS = ['status', 'reason', 'actor'];

async function findCase(number) {
  if (!number) return;
  $('case-status').textContent = 'Поиск…';
  $('case').replaceChildren();
  try {
    // The operator's view of a case (by its number): the case with its whole history.
    const c = await api('/v1/applications/' + encodeURIComponent(number), {token: token(), purpose: purpose()});
    $('case-status').textContent = 'Дело найдено.';
    const history = c.history || [];
    const facts = {
      case_number: c.case_number, status: (c.stage && c.stage.stage) || c.status,
      service: c.service && c.service.name, organization: c.organization && c.organization.name,
      channel: c.channel, submitted_at: c.submitted_at, next_step: c.stage && c.stage.next_step,
    };
    $('case').replaceChildren(
      el('dl', {}, ...Object.keys(facts).filter((k) => facts[k])
        .map((k) => [el('dt', {}, caseLabel(k)), el('dd', k === 'case_number' ? {id: 'case-number-value'} : {}, String(facts[k]))])),
      el('h3', {}, 'История'),
      el('table', {id: 'case-history'},
        el('thead', {}, el('tr', {}, el('th', {scope: 'col'}, 'Когда'), el('th', {scope: 'col'}, 'Что'))),
        el('tbody', {}, history.map((h) => el('tr', {},
          el('td', {}, h.occurred_at || ''),
          el('td', {}, EVENT_FIELDS.filter((k) => h[k]).map((k) => (typeof h[k] === 'object' ? JSON.stringify(h[k]) : h[k])).join(' · ')))))));
  } catch (e) {
    if (authFailed(e)) return;
    $('case-status').textContent = e instanceof ApiError && e.status === 404 ? 'Дело с таким номером не найдено.' : 'Поиск не удался: ' + describe(e);
  }
}

function caseLabel(k) {
  return {case_number: 'Номер', status: 'Статус', service: 'Услуга', organization: 'Куда направлено', channel: 'Канал',
    submitted_at: 'Подано', next_step: 'Что дальше'}[k] || k;
}

main().catch((e) => { $('signin-error').textContent = 'Ошибка загрузки консоли: ' + e.message; });
