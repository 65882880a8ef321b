// The admin console's script: draws the page named by <body data-page> from the JSON
// admin API. Every URL is relative to the page (/console/{page}), so the console works
// behind a reverse proxy that serves a town under a path (https://HOST/chuo/console/…). Text from the server is always set as text, never as HTML. Every request
// that changes something carries the session's CSRF token in X-CSRF-Token.
"use strict";

const session = JSON.parse(document.getElementById("session").textContent);
const pageName = document.body.dataset.page;
const content = document.getElementById("content");

const CATEGORIES = [["ChildRearing", "子育て"], ["Health", "健康・検診"], ["Vaccination", "予防接種"], ["Allowance", "手当・助成"], ["Living", "暮らし"]];
const STATES = { queued: "送信待ち", sending: "送信中", sent: "送信済み", "failed-retryable": "再試行待ち", "failed-permanent": "送信失敗", expired: "期限切れ" };

// Builds an element: attributes (on* as listeners), then children (strings become text).
function h(tag, attributes, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

async function api(method, path, body) {
  const headers = { "x-csrf-token": session ? session.csrf_token : "" };
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(".." + path, { method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { error: text }; }
  if (response.status === 401 && pageName !== "login") location.assign("login?next=" + encodeURIComponent(pageName));
  if (!response.ok) throw new Error((data && data.error) || "HTTP " + response.status);
  return data;
}

// A message line under a form: what happened, or what went wrong.
function notice() {
  const line = h("p", { class: "notice", role: "status" });
  line.show = (text, failed) => { line.textContent = text; line.className = failed ? "notice error" : "notice ok"; };
  return line;
}

// The page's own status line, above its content: it outlives a page that redraws itself
// after an action, so what the action did stays on screen.
const pageStatus = notice();
pageStatus.id = "status";
content.before(pageStatus);

// Runs an action, showing its outcome in `line`; buttons are disabled meanwhile.
async function act(line, button, work) {
  if (button) button.disabled = true;
  try { line.show(await work(), false); } catch (error) { line.show(error.message, true); } finally { if (button) button.disabled = false; }
}

// A stored UTC timestamp as staff read it: Japan time.
function japanTime(iso) {
  const at = new Date(iso);
  return Number.isNaN(at.getTime()) ? iso : at.toLocaleString("ja-JP", { timeZone: "Asia/Tokyo", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function table(headings, rows) {
  return h("table", {}, h("thead", {}, h("tr", {}, headings.map((heading) => h("th", {}, heading)))), h("tbody", {}, rows));
}

function roleName(role) {
  return { administrator: "管理者", division: "担当課", viewer: "閲覧のみ" }[role] || role;
}

function drawHeader() {
  const top = document.getElementById("top");
  if (!session) { top.append(h("strong", {}, "oshirase 管理")); return; }
  const signOut = h("button", { id: "sign-out", onclick: async () => { await api("DELETE", "/admin/session"); location.assign("login"); } }, "サインアウト");
  top.append(
    h("strong", {}, session.town ? "oshirase 管理・" + session.town : "oshirase 管理"),
    h("nav", {}, session.pages.map(([slug, title]) => h("a", { href: slug, "aria-current": slug === pageName ? "page" : null }, title))),
    h("span", { class: "who" }, session.caller.name + "(" + roleName(session.caller.role) + ")"),
    signOut,
  );
}

const isAdministrator = () => session.caller.role === "administrator";
const canChange = () => session.caller.role !== "viewer";

// ---- sign-in

function drawLogin() {
  const line = notice();
  const login = h("input", { id: "login", name: "login", autocomplete: "username", required: true });
  const password = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const form = h("form", { id: "sign-in", onsubmit: async (event) => {
    event.preventDefault();
    await act(line, form.querySelector("button"), async () => {
      await api("POST", "/admin/session", { login: login.value, password: password.value });
      const next = new URLSearchParams(location.search).get("next") || "";
      // Only a page of the console, named by its slug: never another site.
      location.assign(next !== "login" && Object.hasOwn(PAGES, next) ? next : "dashboard");
      return "サインインしました";
    });
  } }, h("label", {}, "ログイン名", login), h("label", {}, "パスワード", password), h("button", { type: "submit" }, "サインイン"), line);
  content.replaceChildren(form);
}

// ---- dashboard

// An SVG element of a chart with its attributes, and its text: the label of a text
// element, the tooltip (a title element) of a shape.
function svgElement(tag, attributes, text) {
  const element = document.createElementNS("http://www.w3.org/2000/svg", tag);
  Object.entries(attributes).forEach(([name, value]) => element.setAttribute(name, value));
  if (text === undefined) return element;
  if (tag === "text" || tag === "title") element.textContent = text;
  else element.append(svgElement("title", {}, text));
  return element;
}

// A bar chart's frame: the bars' width and height, and a line of labels under them.
const chartFrame = (width, height, attributes) => svgElement("svg", { viewBox: "0 0 " + width + " " + (height + 20), role: "img", ...attributes });

function chart(perDay) {
  const width = 720, height = 180, bar = width / perDay.length;
  const highest = Math.max(1, ...perDay.map((day) => day.sent + day.failed));
  const svg = chartFrame(width, height, { id: "deliveries-chart", "aria-label": "日ごとの配信数(過去30日)" });
  perDay.forEach((day, index) => {
    let top = height;
    for (const [count, kind] of [[day.sent, "sent"], [day.failed, "failed"]]) {
      const tall = (count / highest) * (height - 10);
      svg.append(svgElement("rect", { x: index * bar + 2, y: top - tall, width: bar - 4, height: tall, class: kind }, `${day.day}: ${kind === "sent" ? "送信" : "失敗"} ${count}`));
      top -= tall;
    }
    if (index % 5 === 0) svg.append(svgElement("text", { x: index * bar + 2, y: height + 15, class: "axis" }, day.day.slice(5)));
  });
  return svg;
}

async function drawDashboard() {
  const figures = await api("GET", "/admin/dashboard");
  const card = (id, label, value, warn) => h("div", { class: warn ? "card warn" : "card", id }, h("span", {}, label), h("strong", {}, value.toLocaleString("ja-JP")));
  content.replaceChildren(
    h("div", { class: "cards" },
      card("kpi-registered", "登録住民", figures.registered_residents),
      card("kpi-followers", "LINE 友だち", figures.line_followers),
      card("kpi-sent-month", "今月の送信", figures.sent_this_month),
      card("kpi-sent-total", "累計の送信", figures.sent_total),
      card("kpi-reached", "届いた住民", figures.residents_reached),
      card("kpi-programs", "稼働中の制度", figures.programs_live),
      card("kpi-failures", "要確認(7日間の失敗・期限切れ/失敗した実行)", figures.failed_deliveries_7_days + figures.failed_runs_7_days, figures.failed_deliveries_7_days + figures.failed_runs_7_days > 0),
    ),
    h("h2", {}, "日ごとの配信(過去30日)"),
    chart(figures.per_day),
    h("p", { class: "legend" }, h("span", { class: "sent" }, "■ 送信"), " ", h("span", { class: "failed" }, "■ 失敗・期限切れ")),
  );
  // What the import of the records in use warned of (households without a head for now,
  // 同居人, 生年月日不詳 …): the snapshots are the administrator's.
  if (!isAdministrator()) return;
  const active = (await api("GET", "/admin/snapshots")).find((snapshot) => snapshot.active);
  if (!active) return;
  content.append(
    h("h2", {}, `使用中の住民記録(${japanTime(active.imported_at)} 取り込み・${active.residents.toLocaleString("ja-JP")} 人)`),
    active.warnings.length === 0
      ? h("p", {}, "取り込み時の注意はありません。")
      : h("ul", { id: "import-warnings" }, active.warnings.map((warning) => h("li", {}, warning))),
  );
}

// ---- programs

async function fileAsBase64(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  let binary = "";
  for (let start = 0; start < bytes.length; start += 0x8000) binary += String.fromCharCode(...bytes.subarray(start, start + 0x8000));
  return btoa(binary);
}

function dryRunView(summary) {
  const counts = (title, entries) => h("div", {}, h("h3", {}, title), table(["区分", "件数"], entries.map(([key, count]) => h("tr", {}, h("td", {}, key), h("td", { class: "number" }, count)))));
  const parts = [h("p", { id: "dry-run-total" }, `お知らせ ${summary.notices} 件(送信も保存もしていません)`),
    h("div", { class: "columns" }, counts("時期", summary.by_occasion), counts("区", summary.by_ward), counts("年齢", summary.by_age_band))];
  if (summary.residents) {
    parts.push(h("h3", {}, "対象者(先頭 200 人、管理者のみ表示)"),
      table(["宛名番号", "氏名", "区", "年齢", "時期", "送信日", "理由"], summary.residents.map((resident) => h("tr", {}, [resident.resident_id, resident.name, resident.ward, resident.age, resident.occasion, resident.send_on, resident.reason].map((value) => h("td", {}, value))))));
  }
  return h("section", { id: "dry-run" }, parts);
}

async function drawPrograms() {
  const [programs, versions] = await Promise.all([api("GET", "/admin/program-summaries"), api("GET", "/admin/programs")]);
  const line = pageStatus;
  const result = h("div", { id: "program-result" });
  const refresh = () => drawPrograms().catch((error) => line.show(error.message, true));
  const rows = programs.map((program) => {
    const actions = h("td", { class: "actions" });
    actions.append(h("button", { "data-dry-run": program.code, onclick: (event) => act(line, event.target, async () => {
      result.replaceChildren(h("h2", {}, program.name + " の試算"), dryRunView(await api("GET", `/admin/programs/${encodeURIComponent(program.code)}/dry-run`)));
      return program.name + " を試算しました";
    }) }, "試算"));
    if (program.may_act) {
      if (program.active_version !== null) actions.append(h("button", { "data-pause": program.code, onclick: (event) => act(line, event.target, async () => { await api("POST", `/admin/programs/${encodeURIComponent(program.code)}/disable`); refresh(); return program.name + " を一時停止しました"; }) }, "一時停止"));
      if (program.previous_version !== null) actions.append(h("button", { "data-rollback": program.code, onclick: (event) => act(line, event.target, async () => { const answer = await api("POST", `/admin/programs/${encodeURIComponent(program.code)}/rollback`); refresh(); return `${program.name} を版 ${answer.version} に戻しました`; }) }, program.active_version === null ? "再開" : "切り戻し"));
    }
    const programVersions = versions.filter((version) => version.program === program.code);
    const versionList = h("details", {}, h("summary", {}, `版 ${programVersions.length} 件`), h("ul", {}, programVersions.map((version) => h("li", {},
      `版 ${version.version}(${{ active: "有効", inactive: "無効", rejected: "却下" }[version.state] || version.state})${version.published_by} ${japanTime(version.published_at)} `,
      version.state === "inactive" && program.may_act ? h("button", { "data-activate": `${program.code}:${version.version}`, onclick: (event) => act(line, event.target, async () => { await api("POST", `/admin/programs/${encodeURIComponent(program.code)}/activate`, { version: version.version }); refresh(); return `版 ${version.version} を有効にしました`; }) }, "有効にする") : null,
      h("small", { class: "validation" }, version.validation)))));
    return h("tr", { "data-program": program.code },
      h("td", {}, program.code), h("td", {}, program.name, h("br"), h("small", {}, program.division)),
      h("td", { class: "state" }, program.active_version === null ? "一時停止中" : `版 ${program.active_version} で配信中`),
      h("td", {}, program.last_run_on ? `${program.last_run_on}${program.last_run_outcome === "succeeded" ? "成功" : "失敗"}・${program.last_run_notices} 件)` : "未実行",
        program.last_run_withheld_inexact_birth_day > 0 ? h("small", { class: "withheld" }, `生年月日不詳のため ${program.last_run_withheld_inexact_birth_day} 件を保留`) : null),
      h("td", {}, versionList), actions);
  });
  const parts = [table(["コード", "制度", "状態", "最後の実行", "版", "操作"], rows), result];
  if (canChange()) parts.unshift(uploadForm(refresh));
  content.replaceChildren(...parts);
}

function uploadForm(refresh) {
  const line = pageStatus;
  const code = h("input", { id: "upload-code", required: true, placeholder: "vaccine-mr", pattern: "[a-z0-9-]+" });
  const wasm = h("input", { id: "upload-wasm", type: "file", accept: ".wasm", required: true });
  const cases = h("input", { id: "upload-cases", type: "file", accept: ".yaml,.yml" });
  const form = h("form", { id: "upload", onsubmit: (event) => {
    event.preventDefault();
    act(line, form.querySelector("button"), async () => {
      const body = { wasm_base64: await fileAsBase64(wasm.files[0]), cases: cases.files[0] ? await cases.files[0].text() : null };
      try {
        const published = await api("POST", `/admin/programs/${encodeURIComponent(code.value)}/versions`, body);
        refresh();
        return `版 ${published.version} を受け付けました${published.active ? "(有効)" : ""}。検証: ${published.validation || ""}`;
      } catch (error) { throw new Error("検証に通りませんでした: " + error.message); }
    });
  } }, h("h2", {}, "新しい版を登録"), h("label", {}, "制度コード", code), h("label", {}, "プラグイン(.wasm)", wasm), h("label", {}, "例題(cases.yaml、任意)", cases), h("button", { type: "submit" }, "検証して登録"));
  return form;
}

// ---- messages

// A notice's card as LINE draws it (channel/card.rs builds the same): the program, the
// occasion's title, the wording, the deadline, and its buttons.
function card(program, title, text, deadline, links) {
  const buttons = [];
  if (links.booking_url) buttons.push(h("a", { class: "card-button primary", href: links.booking_url, target: "_blank", rel: "noopener" }, "予約・申請"));
  if (links.details_url) buttons.push(h("a", { class: "card-button secondary", href: links.details_url, target: "_blank", rel: "noopener" }, "詳しく"));
  buttons.push(h("span", { class: "card-button link" }, "配信の設定"));
  return h("div", { class: "phone" }, h("div", { class: "card" },
    h("div", { class: "card-header" }, h("div", { class: "card-program" }, program), h("div", { class: "card-title" }, title)),
    h("div", { class: "card-body" }, h("div", { class: "card-text" }, text), h("div", { class: "card-deadline" }, h("span", {}, "期限"), h("b", {}, deadline))),
    h("div", { class: "card-footer" }, buttons)));
}

async function drawMessages() {
  const programs = await api("GET", "/admin/program-summaries");
  const choose = h("select", { id: "message-program" }, programs.filter((program) => program.active_version !== null).map((program) => h("option", { value: program.code }, `${program.name}(${program.code})`)));
  const editor = h("div", { id: "message-editor" });
  const show = async () => {
    const [detail, settings] = await Promise.all([api("GET", `/admin/programs/${encodeURIComponent(choose.value)}`), api("GET", `/admin/programs/${encodeURIComponent(choose.value)}/settings`)]);
    const may = programs.find((program) => program.code === choose.value).may_act;
    const sample = { program: detail.name, contact: detail.contact, deadline: "令和9年3月31日" };
    editor.replaceChildren(h("p", {}, "使える差し込み: ", detail.placeholders.map((name) => h("code", {}, `{${name}}`)), ` 。LINE の上限は ${detail.line_text_limit} 文字です。`),
      ...detail.occasions.map((occasion) => {
        const line = notice();
        const text = h("textarea", { rows: 6, "data-occasion": occasion.key, readonly: !may }, occasion.template || occasion.default_template);
        const preview = h("div", { class: "preview" });
        const counter = h("span", { class: "count" });
        const booking = h("input", { type: "url", "data-booking": occasion.key, value: occasion.links.booking_url || "", placeholder: "https://(予約・申請のページ)", readonly: !may, "aria-label": "予約・申請のページ" });
        const details = h("input", { type: "url", "data-details": occasion.key, value: occasion.links.details_url || "", placeholder: detail.source_url || "https://(市の案内ページ)", readonly: !may, "aria-label": "詳しくのページ" });
        const update = () => {
          const rendered = text.value.replace(/\{(\w+)\}/g, (whole, name) => (name in sample ? sample[name] : whole));
          const unknown = [...text.value.matchAll(/\{(\w*)\}/g)].map((match) => match[1]).filter((name) => !(name in sample));
          preview.replaceChildren(card(detail.name, occasion.title || occasion.key, rendered, sample.deadline, { booking_url: booking.value.trim(), details_url: details.value.trim() || detail.source_url }));
          counter.textContent = `${[...rendered].length} / ${detail.line_text_limit} 文字` + (unknown.length ? ` — 使えない差し込み: ${unknown.join(", ")}` : "");
          counter.className = unknown.length || [...rendered].length > detail.line_text_limit ? "count error" : "count";
        };
        text.addEventListener("input", update);
        booking.addEventListener("input", update);
        details.addEventListener("input", update);
        update();
        const saveLinks = (event) => act(line, event.target, async () => {
          const stored = await api("PUT", `/admin/programs/${encodeURIComponent(choose.value)}/links/${encodeURIComponent(occasion.key)}`, { booking_url: booking.value, details_url: details.value });
          return stored.booking_url || stored.details_url ? "リンクを保存しました" : "リンクを消しました";
        });
        const save = (template) => (event) => act(line, event.target, async () => {
          const answer = await api("PUT", `/admin/programs/${encodeURIComponent(choose.value)}/wording/${encodeURIComponent(occasion.key)}`, { template });
          if (!template) { text.value = occasion.default_template; update(); }
          return "保存しました: " + answer.preview.slice(0, 40) + "…";
        });
        return h("section", { class: "occasion" }, h("h2", {}, occasion.title || occasion.key, occasion.template ? h("small", {}, "(編集済み)") : null),
          h("div", { class: "columns" }, h("div", {}, text, counter, h("label", {}, "予約・申請のページ ", booking), h("label", {}, "詳しくのページ ", details)), preview),
          may ? h("div", {}, h("button", { "data-save": occasion.key, onclick: (event) => save(text.value)(event) }, "保存"), h("button", { "data-reset": occasion.key, onclick: (event) => save("")(event) }, "既定の文面に戻す"), h("button", { "data-save-links": occasion.key, onclick: saveLinks }, "リンクを保存")) : null, line);
      }));
    if (settings.length) editor.append(settingsSection(choose.value, may, settings));
  };
  choose.addEventListener("change", () => show().catch((error) => editor.replaceChildren(error.message)));
  content.replaceChildren(h("label", {}, "制度 ", choose), editor);
  if (choose.value) await show();
}

// A program's settings (plugin contract 1.1): each with its value, default and last
// change; the effect of a change on the live snapshot, counted, before it is saved; and
// the save, all or nothing. A program that declares none shows no section.
const SETTING_HINTS = { "month-day": "MM-DD(例 05-16)", date: "YYYY-MM-DD", yen: "円(数字のみ)", integer: "数字" };

function settingsSection(code, may, states) {
  const path = `/admin/programs/${encodeURIComponent(code)}/settings`;
  const section = h("section", { id: "settings" });
  const line = notice();
  const effect = h("div", { id: "settings-preview" });
  const draw = (states) => {
    const inputs = states.map((setting) => h("input", { name: setting.name, "data-setting": setting.name, value: setting.value, placeholder: SETTING_HINTS[setting.type] || "", readonly: !may, "aria-label": setting.label || setting.name }));
    // Only the values staff changed are sent: an untouched one is neither checked again
    // nor recorded as changed by them.
    const changes = () => {
      const changed = {};
      states.forEach((setting, index) => { const value = inputs[index].value.trim(); if (value !== setting.value) changed[setting.name] = value; });
      return changed;
    };
    const rows = states.map((setting, index) => h("tr", { "data-setting-row": setting.name },
      h("td", {}, setting.label || setting.name, setting.help ? h("small", { class: "help" }, setting.help) : null),
      h("td", {}, inputs[index]),
      h("td", {}, setting.default),
      h("td", {}, setting.changed_at ? `${setting.changed_by} ${japanTime(setting.changed_at)}` : "既定のまま")));
    const date = h("input", { id: "settings-date", type: "date" });
    const preview = (event) => act(line, event.target, async () => {
      const answer = await api("POST", path + "/preview", { changes: changes(), date: date.value || undefined });
      effect.replaceChildren(h("p", {}, `${answer.date} に判定すると: 今の設定でお知らせ ${answer.current.notices} 件(${answer.current.residents} 人)、変更後は ${answer.proposed.notices} 件(${answer.proposed.residents} 人)。増える ${answer.added} 件、減る ${answer.removed} 件。`));
      return "効果を確認しました(まだ保存していません)";
    });
    const form = h("form", { id: "settings-form", onsubmit: (event) => {
      event.preventDefault();
      act(line, event.submitter, async () => {
        const changed = changes();
        if (!Object.keys(changed).length) return "変更はありません";
        const saved = await api("PUT", path, { changes: changed });
        effect.replaceChildren();
        draw(saved);
        return "保存しました。次の実行から新しい設定で判定します";
      });
    } }, table(["項目", "値", "既定", "最終変更"], rows),
      may ? h("div", { class: "settings-actions" }, h("label", {}, "判定する日(空欄なら今日)", date),
        h("button", { type: "button", "data-settings-preview": code, onclick: preview }, "効果を確認"),
        h("button", { type: "submit", "data-settings-save": code }, "保存")) : null);
    section.replaceChildren(h("h2", {}, "設定"), form, effect, line);
  };
  draw(states);
  return section;
}

// ---- a program made from conditions, without code

// The template's conditions as a form, a dry run counted by age band and ward, the wording
// with its card, and publishing: a program of its own code, with versions like any other.
async function drawConditions() {
  if (!canChange()) { content.replaceChildren(h("p", {}, "閲覧のみのアカウントでは制度を作れません。")); return; }
  const form = await api("GET", "/admin/conditions");
  const line = pageStatus;
  const field = (id, label, attributes) => { const input = h("input", { id, name: id, ...attributes }); return [input, h("label", {}, label, " ", input)]; };
  const [code, codeLabel] = field("new-code", "制度コード", { required: true, pattern: "[a-z0-9-]+", placeholder: "screening-oral-chuo" });
  const [name, nameLabel] = field("new-name", "制度の名前", { required: true, placeholder: "歯周病検診" });
  const [division, divisionLabel] = field("new-division", "担当課", { required: true, value: session.caller.division || "" });
  const [contact, contactLabel] = field("new-contact", "問い合わせ先", { required: true, placeholder: "千葉市 健康支援課 043-238-9930" });
  const [sourceUrl, sourceLabel] = field("new-source-url", "市の案内ページ", { type: "url", required: true, placeholder: "https://www.city.chiba.jp/…" });
  const category = h("select", { id: "new-category" }, CATEGORIES.map(([value, label]) => h("option", { value }, label)));
  const inputs = form.conditions.map((setting) => setting.type === "choice"
    ? h("select", { "data-condition": setting.name, "aria-label": setting.label }, setting.choices.map((choice) => h("option", { value: choice, selected: choice === setting.default }, choice)))
    : h("input", { "data-condition": setting.name, value: setting.default, placeholder: SETTING_HINTS[setting.type] || "", "aria-label": setting.label }));
  const conditions = () => Object.fromEntries(form.conditions.map((setting, index) => [setting.name, inputs[index].value.trim()]));
  const rows = form.conditions.map((setting, index) => h("tr", {}, h("td", {}, setting.label, h("small", { class: "help" }, setting.help)), h("td", {}, inputs[index])));
  const date = h("input", { id: "conditions-date", type: "date" });
  const effect = h("div", { id: "conditions-dry-run" });
  const dryRun = (event) => act(line, event.target, async () => {
    const answer = await api("POST", "/admin/conditions/dry-run", { conditions: conditions(), date: date.value || undefined });
    // One occasion, whose title staff are writing below.
    answer.by_occasion = answer.by_occasion.map(([, count]) => [title.value, count]);
    effect.replaceChildren(dryRunView(answer));
    return "試算しました(まだ公開していません)";
  });
  const title = h("input", { id: "new-title", required: true, value: "お知らせ", "aria-label": "お知らせの見出し" });
  const wording = h("textarea", { id: "new-template", rows: 6 }, form.template);
  const preview = h("div", { class: "preview" });
  const counter = h("span", { class: "count" });
  const update = () => {
    const sample = { program: name.value || "(制度の名前)", contact: contact.value || "(問い合わせ先)", deadline: "令和9年2月28日" };
    const rendered = wording.value.replace(/\{(\w+)\}/g, (whole, key) => (key in sample ? sample[key] : whole));
    preview.replaceChildren(card(sample.program, title.value, rendered, sample.deadline, { details_url: sourceUrl.value.trim() }));
    counter.textContent = `${[...rendered].length} 文字`;
  };
  [name, contact, sourceUrl, title, wording].forEach((input) => input.addEventListener("input", update));
  update();
  const publish = h("form", { id: "conditions-form", onsubmit: (event) => {
    event.preventDefault();
    act(line, event.submitter, async () => {
      const published = await api("POST", "/admin/conditions", { code: code.value.trim(), name: name.value.trim(), division: division.value.trim(), contact: contact.value.trim(), category: category.value, source_url: sourceUrl.value.trim(), title: title.value.trim(), template: wording.value, conditions: conditions() });
      return `${name.value} を版 ${published.version} として公開しました${published.active ? "(有効)" : ""}。検証: ${published.validation}`;
    });
  } },
    h("section", {}, h("h2", {}, "制度"), codeLabel, nameLabel, divisionLabel, contactLabel, h("label", {}, "分類 ", category), sourceLabel),
    h("section", {}, h("h2", {}, "条件"), table(["条件", "値"], rows),
      h("div", { class: "settings-actions" }, h("label", {}, "判定する日(空欄なら今日)", date), h("button", { type: "button", id: "conditions-try", onclick: dryRun }, "試算")), effect),
    h("section", {}, h("h2", {}, "文面"), h("label", {}, "見出し ", title), h("div", { class: "columns" }, h("div", {}, wording, counter), preview)),
    h("button", { type: "submit", id: "conditions-publish" }, "検証して公開"));
  content.replaceChildren(h("p", {}, "コードを書かずに、条件から制度を作ります。公開した制度は、ほかの制度と同じく版・設定・試算・切り戻しができます。"), publish);
}

// ---- sending

async function drawSending() {
  const [programs, reservations] = await Promise.all([api("GET", "/admin/program-summaries"), api("GET", "/admin/sends")]);
  const line = pageStatus;
  const refresh = () => drawSending().catch((error) => line.show(error.message, true));
  const program = h("select", { id: "send-program" }, programs.filter((entry) => entry.may_act && entry.active_version !== null).map((entry) => h("option", { value: entry.code }, entry.name)));
  const when = h("input", { id: "send-at", type: "datetime-local", step: 1 });
  const reserve = (body) => async () => {
    const answer = await api("POST", "/admin/sends", body);
    refresh();
    return `予約 ${answer.id}${answer.send_at} に送ります(送信は送信時間帯の中で行います)`;
  };
  const programForm = h("form", { id: "send-form", onsubmit: (event) => { event.preventDefault(); act(line, event.submitter, reserve({ program: program.value, send_at: when.value || null })); } },
    h("h2", {}, "制度を実行して送る"), h("label", {}, "制度 ", program), h("label", {}, "日時(空欄なら今すぐ) ", when), h("button", { type: "submit" }, "予約する"));
  const parts = [];
  if (canChange()) parts.push(programForm);
  if (isAdministrator()) {
    const title = h("input", { id: "broadcast-title", required: true });
    const text = h("textarea", { id: "broadcast-text", rows: 4, required: true });
    const category = h("select", { id: "broadcast-category" }, h("option", { value: "" }, "登録者全員"), CATEGORIES.map(([code, label]) => h("option", { value: code }, label + " を受け取る人")));
    const broadcastWhen = h("input", { id: "broadcast-at", type: "datetime-local", step: 1 });
    parts.push(h("form", { id: "broadcast-form", onsubmit: (event) => { event.preventDefault(); act(line, event.submitter, reserve({ broadcast: { title: title.value, text: text.value, category: category.value || null }, send_at: broadcastWhen.value || null })); } },
      h("h2", {}, "一斉配信(アンケートなど)"), h("label", {}, "件名 ", title), h("label", {}, "本文 ", text), h("label", {}, "宛先 ", category), h("label", {}, "日時(空欄なら今すぐ) ", broadcastWhen), h("button", { type: "submit" }, "予約する")));
  }
  parts.push(h("h2", {}, "予約"), table(["番号", "内容", "日時", "状態", "結果", "予約した人", ""], reservations.map((entry) => h("tr", { "data-reservation": entry.id },
    h("td", {}, entry.id), h("td", {}, entry.program ? "制度 " + entry.program : "一斉配信「" + entry.title + "」"), h("td", {}, entry.send_at),
    h("td", { class: "state" }, { waiting: "待機中", done: "実行済み", cancelled: "取り消し" }[entry.state] || entry.state), h("td", {}, entry.outcome), h("td", {}, entry.created_by),
    h("td", {}, entry.state === "waiting" && canChange() ? h("button", { onclick: (event) => act(line, event.target, async () => { await api("POST", `/admin/sends/${encodeURIComponent(entry.id)}/cancel`); refresh(); return `予約 ${entry.id} を取り消しました`; }) }, "取り消す") : null)))));
  content.replaceChildren(...parts);
}

// ---- surveys: a question answered with a tap in the chat, and its tally

const SURVEY_STATES = { waiting: "送信前", open: "受付中", closed: "締め切り" };
// The tally on screen is read again every 2 s while its page is open.
let surveyPoll = null;

function surveyAudience(survey) {
  if (survey.audience === "category") return (CATEGORIES.find(([code]) => code === survey.category) || [, survey.category])[1] + " を受け取る人";
  if (survey.audience === "program") return "制度 " + survey.program + " の通知を受け取った人";
  return "登録者全員";
}

// Counts only: a tally never names who answered.
function surveyTally(survey) {
  const highest = Math.max(1, ...survey.choices.map((choice) => choice.count));
  // The bar's width is set through the style object: the page's CSP refuses style attributes.
  const bar = (count) => { const span = h("span", { class: "bar" }); span.style.width = `${Math.round((count / highest) * 100)}%`; return span; };
  return h("section", { id: "survey-tally", "data-survey-id": survey.id },
    h("h2", {}, `集計: ${survey.question}`),
    h("p", {}, `${SURVEY_STATES[survey.state] || survey.state}・配信 ${survey.delivered} 人・締め切り ${survey.closes_at}`),
    table(["選択肢", "件数", ""], survey.choices.map((choice, index) => h("tr", { "data-choice-count": index },
      h("td", {}, choice.label), h("td", { class: "number" }, choice.count),
      h("td", {}, bar(choice.count))))),
    h("p", { id: "survey-total" }, `回答 ${survey.total} 件`),
    h("a", { id: "survey-csv", href: "../admin/surveys/" + encodeURIComponent(survey.id) + "/csv" }, "CSV をダウンロード"));
}

function showSurvey(id) {
  if (surveyPoll) clearInterval(surveyPoll);
  const draw = async () => {
    const survey = await api("GET", `/admin/surveys/${encodeURIComponent(id)}`);
    const shown = document.getElementById("survey-tally");
    if (shown) shown.replaceWith(surveyTally(survey)); else content.append(surveyTally(survey));
  };
  surveyPoll = setInterval(() => draw().catch((error) => pageStatus.show(error.message, true)), 2000);
  return draw();
}

async function drawSurveys() {
  const surveys = await api("GET", "/admin/surveys");
  const line = pageStatus;
  const parts = [];
  if (isAdministrator()) {
    const question = h("textarea", { id: "survey-question", rows: 3, required: true });
    const kind = h("select", { id: "survey-kind" }, h("option", { value: "choice" }, "選択肢から選ぶ(2〜5個)"), h("option", { value: "rating" }, "5段階で評価する(1〜5)"));
    const choices = [0, 1, 2, 3, 4].map((index) => h("input", { "data-choice": index, maxlength: 20, placeholder: `選択肢 ${index + 1}(20文字まで)` }));
    const choiceBox = h("fieldset", { id: "survey-choices" }, h("legend", {}, "選択肢(空欄は使いません)"), choices);
    kind.addEventListener("change", () => { choiceBox.hidden = kind.value === "rating"; });
    const audience = h("select", { id: "survey-audience" }, h("option", { value: "everyone" }, "登録者全員"), h("option", { value: "category" }, "種類を受け取る人"), h("option", { value: "program" }, "制度の通知を受け取った人"));
    const category = h("select", { id: "survey-category" }, CATEGORIES.map(([code, label]) => h("option", { value: code }, label)));
    const program = h("input", { id: "survey-program", placeholder: "制度コード(例 infant-checkup)" });
    const sentFrom = h("input", { id: "survey-sent-from", type: "date" });
    const sentTo = h("input", { id: "survey-sent-to", type: "date" });
    const categoryBox = h("label", { hidden: true }, "種類 ", category);
    const programBox = h("div", { hidden: true }, h("label", {}, "制度 ", program), h("label", {}, "通知を送った日(から) ", sentFrom), h("label", {}, "(まで) ", sentTo));
    audience.addEventListener("change", () => { categoryBox.hidden = audience.value !== "category"; programBox.hidden = audience.value !== "program"; });
    const opens = h("input", { id: "survey-opens", type: "datetime-local", step: 1 });
    const closes = h("input", { id: "survey-closes", type: "datetime-local", step: 1, required: true });
    const form = h("form", { id: "survey-form", onsubmit: (event) => {
      event.preventDefault();
      act(line, event.submitter, async () => {
        const body = { question: question.value, kind: kind.value, audience: audience.value, opens_at: opens.value || null, closes_at: closes.value };
        if (kind.value === "choice") body.choices = choices.map((input) => input.value.trim()).filter((value) => value);
        if (audience.value === "category") body.category = category.value;
        if (audience.value === "program") Object.assign(body, { program: program.value.trim(), sent_from: sentFrom.value || null, sent_to: sentTo.value || null });
        const created = await api("POST", "/admin/surveys", body);
        await drawSurveys();
        await showSurvey(created.id);
        return `アンケート ${created.id} を作りました。開始の時刻に LINE で送ります(メールの方には送りません。ボタンで答えるため)`;
      });
    } }, h("h2", {}, "アンケートを作る"), h("label", {}, "質問 ", question), h("label", {}, "答え方 ", kind), choiceBox,
      h("label", {}, "宛先 ", audience), categoryBox, programBox,
      h("label", {}, "開始(空欄なら今すぐ) ", opens), h("label", {}, "締め切り ", closes), h("button", { type: "submit" }, "作成して予約する"));
    parts.push(form);
  }
  parts.push(h("h2", {}, "アンケート一覧"), table(["番号", "質問", "宛先", "状態", "回答", "配信", "締め切り", ""], surveys.map((survey) => h("tr", { "data-survey": survey.id },
    h("td", {}, survey.id), h("td", {}, survey.question), h("td", {}, surveyAudience(survey)), h("td", { class: "state" }, SURVEY_STATES[survey.state] || survey.state),
    h("td", { class: "number" }, survey.total), h("td", { class: "number" }, survey.delivered), h("td", {}, survey.closes_at),
    h("td", {}, h("button", { "data-show-survey": survey.id, onclick: (event) => act(line, event.target, async () => { await showSurvey(survey.id); return `アンケート ${survey.id} の集計を表示しています(2 秒ごとに更新)`; }) }, "集計"))))));
  content.replaceChildren(...parts);
}

// ---- registrations

async function drawRegistrations() {
  if (!isAdministrator()) { content.replaceChildren(h("p", {}, "登録申請は住民の記録を含むため、管理者だけが扱えます。")); return; }
  const [applications, postcards] = await Promise.all([api("GET", "/admin/applications"), api("GET", "/admin/postcards")]);
  const line = pageStatus;
  const refresh = () => drawRegistrations().catch((error) => line.show(error.message, true));
  const rows = applications.map((application) => {
    const choose = h("select", {}, application.candidates.map((candidate) => h("option", { value: candidate.resident_id }, `${candidate.resident_id} ${candidate.name} ${candidate.ward} ${candidate.address}`)));
    return h("tr", { "data-application": application.id }, h("td", {}, application.id), h("td", {}, japanTime(application.submitted_at)),
      h("td", {}, application.name, h("br"), application.birth_date, h("br"), application.address),
      h("td", {}, application.candidates.length ? choose : "該当なし"),
      h("td", {}, application.candidates.length ? h("button", { onclick: (event) => act(line, event.target, async () => { await api("POST", `/admin/applications/${encodeURIComponent(application.id)}/approve`, { resident_id: choose.value }); refresh(); return `申請 ${application.id} を承認し、はがきを印刷待ちにしました`; }) }, "承認") : null,
        h("button", { onclick: (event) => act(line, event.target, async () => { const reason = prompt("却下の理由(記録用。住民には送りません)"); if (!reason) return "取りやめました"; await api("POST", `/admin/applications/${encodeURIComponent(application.id)}/reject`, { reason }); refresh(); return `申請 ${application.id} を却下しました`; }) }, "却下")));
  });
  const print = h("button", { id: "print-postcards", onclick: (event) => act(line, event.target, async () => { const printed = await api("POST", "/admin/postcards"); refresh(); return printed.file ? `${printed.postcards} 枚を ${printed.file} にしました` : "印刷待ちのはがきはありません"; }) }, "印刷用 PDF を作る");
  content.replaceChildren(h("h2", {}, "審査待ちの申請"), table(["番号", "受付", "申請内容", "住民記録の候補", "操作"], rows),
    h("h2", {}, "はがき"), h("p", {}, `印刷待ち ${postcards.unprinted} 枚 `, print),
    h("ul", { id: "postcard-files" }, postcards.files.map((file) => h("li", {}, h("a", { href: "../admin/postcards/" + encodeURIComponent(file) }, file)))));
}

// ---- deliveries

async function drawDeliveries() {
  const parameters = new URLSearchParams(location.search);
  const query = new URLSearchParams();
  for (const name of ["program", "day"]) if (parameters.get(name)) query.set(name, parameters.get(name));
  const report = await api("GET", "/admin/deliveries?" + query);
  const program = h("input", { name: "program", value: parameters.get("program") || "", placeholder: "制度コード" });
  const day = h("input", { name: "day", type: "date", value: parameters.get("day") || "" });
  content.replaceChildren(h("form", { method: "get" }, program, day, h("button", { type: "submit" }, "絞り込む")),
    h("h2", {}, "日ごと・制度ごとの状態"),
    table(["日", "制度", "経路", "状態", "件数"], report.counts.map((count) => h("tr", {}, h("td", {}, count.day), h("td", {}, count.program), h("td", {}, count.channel === "line" ? "LINE" : "メール"), h("td", {}, STATES[count.state] || count.state), h("td", { class: "number" }, count.deliveries)))),
    h("h2", {}, "失敗の理由(最新 100 件)"),
    table(["番号", "日", "制度", "経路", "状態", "試行", "理由"], report.failures.map((failure) => h("tr", {}, [failure.id, failure.day, failure.program, failure.channel, STATES[failure.state] || failure.state, failure.attempts, failure.reason].map((value) => h("td", {}, value))))));
}

// ---- uptake

// A count as the API shows it: a number, or "<10" for a small group.
const shownCount = (count) => (typeof count === "number" ? count.toLocaleString("ja-JP") : count);
const percent = (rate) => (rate === null ? "—" : rate.toFixed(1) + "%");

// Each month's share who took it up, told (dark) beside not told (light), for one
// program's occasion; a month whose share is withheld for a small group has no bar.
function uptakeChart(months) {
  const width = 720, height = 160, slot = width / Math.max(months.length, 1);
  const svg = chartFrame(width, height, { class: "uptake-chart", "aria-label": "月ごとの受けた割合(通知あり・なし)" });
  months.forEach((row, index) => {
    [[row.told.rate, "told"], [row.not_told.rate, "not-told"]].forEach(([rate, kind], side) => {
      if (rate === null) return;
      const tall = (rate / 100) * (height - 10);
      svg.append(svgElement("rect", { x: index * slot + 4 + side * (slot / 2 - 4), y: height - tall, width: slot / 2 - 6, height: tall, class: kind }, `${row.month} ${kind === "told" ? "通知あり" : "通知なし"} ${percent(rate)}`));
    });
    svg.append(svgElement("text", { x: index * slot + 4, y: height + 15, class: "axis" }, row.month));
  });
  return svg;
}

async function drawUptake() {
  const parameters = new URLSearchParams(location.search);
  const program = parameters.get("program") || "";
  const from = h("input", { name: "from", type: "date", required: true });
  const to = h("input", { name: "to", type: "date", required: true });
  const within = h("input", { name: "within_days", type: "number", min: 1, max: 365, value: 60, required: true });
  const measure = h("button", { type: "submit" }, "測定する");
  const form = h("form", { id: "measure-uptake", onsubmit: (event) => {
    event.preventDefault();
    act(pageStatus, measure, async () => {
      await api("POST", "/admin/uptake", { from: from.value, to: to.value, within_days: Number(within.value), program: program || null });
      await drawUptake();
      return "測定しました。";
    });
  } }, h("label", {}, "対象になった期間 ", from), " 〜 ", to, h("label", {}, " 通知から ", within, " 日以内に受けた"), " ", measure);
  let report = null;
  try {
    report = await api("GET", "/admin/uptake" + (program ? "?program=" + encodeURIComponent(program) : ""));
  } catch (error) {
    // Not measured yet is the usual state of a new town, not a failure.
    if (error.message.includes("not been measured")) pageStatus.show("まだ測定していません。次の住民記録を取り込んだら、期間を選んで測定してください。", false);
    else pageStatus.show(error.message, true);
  }
  const explanation = h("p", {}, "前回の住民記録で対象になった人のうち、今回の住民記録に接種・受診・受給の記録が現れた割合です。10人未満の数は「<10」と表示し、そこから人数がわかる割合は出しません。");
  const parts = [explanation, canChange() ? form : null];
  if (report) {
    from.value = report.from; to.value = report.to; within.value = report.within_days;
    const csv = "../admin/uptake?format=csv" + (program ? "&program=" + encodeURIComponent(program) : "");
    const group = (shown) => [shownCount(shown.eligible), shownCount(shown.took_up), percent(shown.rate), shown.median_days === null ? "—" : shown.median_days + "日"];
    const difference = (row) => (row.difference ? `${row.difference.points.toFixed(1)}(${row.difference.low.toFixed(1)}〜${row.difference.high.toFixed(1)})` : "—");
    const whole = report.rows.filter((row) => row.month === "");
    parts.push(
      h("p", {}, `${report.from} 〜 ${report.to} に対象になった人、通知から ${report.within_days} 日以内(住民記録 ${report.before_snapshot} → ${report.after_snapshot}、${japanTime(report.computed_at)} 測定) `, h("a", { href: csv, id: "uptake-csv" }, "CSV をダウンロード")),
      table(["制度", "機会", "月", "通知あり 対象", "受けた", "割合", "中央値", "通知なし 対象", "受けた", "割合", "中央値", "差(ポイント・95%信頼区間)", "リンクを開いた"],
        report.rows.map((row) => h("tr", { class: row.month === "" ? "total" : null }, [row.program_name || row.program, row.occasion_title || row.occasion, row.month || "期間全体", ...group(row.told), ...group(row.not_told), difference(row), shownCount(row.link_opens)].map((value, index) => h("td", { class: index >= 3 ? "number" : null }, value))))),
      h("h2", {}, "月ごとの受けた割合"),
      h("p", { class: "legend" }, h("span", { class: "told" }, "■ 通知あり"), " ", h("span", { class: "not-told" }, "■ 通知なし")),
      ...whole.flatMap((total) => [h("h3", {}, `${total.program_name || total.program} ${total.occasion_title || total.occasion}`), uptakeChart(report.rows.filter((row) => row.month !== "" && row.program === total.program && row.occasion === total.occasion))]),
    );
  }
  content.replaceChildren(...parts.filter(Boolean));
}

// ---- audit

async function drawAudit() {
  const entries = await api("GET", "/admin/audit");
  content.replaceChildren(table(["日時", "だれが", "何を", "対象", "詳細"], entries.map((entry) => h("tr", {}, [japanTime(entry.at), entry.actor, entry.action, entry.subject, entry.detail].map((value) => h("td", {}, value))))));
}

// ---- accounts (the administrator only): take staff access back

async function drawAccounts() {
  const [users, tokens] = await Promise.all([api("GET", "/admin/users"), api("GET", "/admin/tokens")]);
  const line = pageStatus;
  const refresh = () => drawAccounts().catch((error) => line.show(error.message, true));
  const userAction = (label, attribute, login, path, done) => h("button", { [attribute]: login, onclick: (event) => act(line, event.target, async () => { const answer = await api("POST", `/admin/users/${encodeURIComponent(login)}/${encodeURIComponent(path)}`); refresh(); return done(answer); }) }, label);
  const tokenAction = (label, attribute, id, path, body, done) => h("button", { [attribute]: id, onclick: (event) => act(line, event.target, async () => { await api("POST", `/admin/tokens/${encodeURIComponent(id)}/${encodeURIComponent(path)}`, body); refresh(); return done; }) }, label);
  content.replaceChildren(h("h2", {}, "職員アカウント"),
    table(["ログイン", "名前", "役割", "課", "状態", "セッション", ""], users.map((user) => h("tr", { "data-login": user.login },
      h("td", {}, user.login), h("td", {}, user.display_name), h("td", {}, roleName(user.role)), h("td", {}, user.division), h("td", {}, user.disabled ? "停止中" : "有効"), h("td", { class: "number" }, user.sessions),
      h("td", {},
        user.disabled ? userAction("有効にする", "data-enable", user.login, "enable", () => `${user.login} を有効にしました`)
          : session.caller.actor === "user:" + user.login ? null // one's own account cannot be disabled
          : userAction("停止する", "data-disable", user.login, "disable", () => `${user.login} を停止し、サインイン中のセッションを終了しました`),
        userAction("パスワード再発行", "data-reset", user.login, "password", (answer) => `${answer.login} の新しいパスワード: ${answer.password}(この画面でしか表示されません)`),
        userAction("セッション終了", "data-end-sessions", user.login, "end-sessions", (answer) => `${user.login} のセッション ${answer.sessions} 件を終了しました`))))),
    h("h2", {}, "API トークン"),
    table(["番号", "課", "対象", "作成", "期限", "状態", ""], tokens.map((token) => h("tr", { "data-token": token.id },
      h("td", {}, token.id), h("td", {}, token.division), h("td", {}, token.admin ? "すべての制度" : token.programs.join(", ")), h("td", {}, japanTime(token.created_at)), h("td", {}, japanTime(token.expires_at)),
      h("td", {}, token.revoked_at ? "失効済み" : token.works ? "有効" : "期限切れ"),
      h("td", {}, token.works ? tokenAction("失効させる", "data-revoke", token.id, "revoke", undefined, `トークン ${token.id} を失効させました`) : null)))));
}

const PAGES = { login: drawLogin, dashboard: drawDashboard, programs: drawPrograms, conditions: drawConditions, messages: drawMessages, sending: drawSending, surveys: drawSurveys, registrations: drawRegistrations, deliveries: drawDeliveries, uptake: drawUptake, audit: drawAudit, accounts: drawAccounts };

drawHeader();
Promise.resolve(PAGES[pageName]()).catch((error) => content.replaceChildren(h("p", { class: "notice error" }, error.message)));
