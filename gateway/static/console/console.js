// cellgate console: a page over the real API. Every row comes from /v2.1/servers[/detail]
// with the token typed above; cell health from /readyz; drills (demo) from /console/drills.
// Plain DOM, no build step, no framework; text goes in with textContent, never innerHTML.
"use strict";

const VERSIONS = ["2.1", "2.26", "2.47", "2.69", "2.75"];
const COLUMNS = {
  // label, sort key, cell value
  summary: [
    ["Name", "display_name", (s) => s.name],
    ["ID", "uuid", (s) => s.id],
  ],
  detail: [
    ["Name", "display_name", (s) => s.name],
    ["ID", "uuid", (s) => s.id],
    ["Status", "vm_state", (s) => s.status],
    ["Project", "project_id", (s) => s.tenant_id],
    ["Flavor", null, (s) => (s.flavor ? s.flavor.original_name || s.flavor.id : undefined)],
    ["Host", "host", (s) => s["OS-EXT-SRV-ATTR:host"]],
    ["Created", "created_at", (s) => s.created],
  ],
};
const READY_EVERY_MS = 2000;

const $ = (id) => document.getElementById(id);
const ui = {
  config: null,
  sortKey: "created_at",
  sortDir: "desc",
  pages: [], // URLs of the pages walked so far; the last one is on screen
  next: null,
  loading: 0,
  cellsSeen: "",
};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const child of children) node.append(child);
  return node;
}

function headers() {
  return {
    "X-Auth-Token": $("token").value,
    "OpenStack-API-Version": `compute ${$("version").value}`,
    Accept: "application/json",
  };
}

function faultMessage(body, response) {
  // Nova's error shape: {"<fault>": {"code": N, "message": "..."}}
  if (body && typeof body === "object") {
    const fault = Object.values(body)[0];
    if (fault && fault.message) return `${response.status}: ${fault.message}`;
  }
  return `${response.status} ${response.statusText}`;
}

function firstPage() {
  const view = $("view").value;
  const query = new URLSearchParams({
    limit: $("limit").value,
    sort_key: ui.sortKey,
    sort_dir: ui.sortDir,
  });
  const name = $("name").value.trim();
  if (name) query.set("name", name);
  if ($("all-projects").checked) query.set("all_tenants", "1");
  return `/v2.1/servers${view === "detail" ? "/detail" : ""}?${query}`;
}

function sameOrigin(href) {
  // servers_links are absolute (the gateway's public URL): keep path and query only.
  const url = new URL(href, location.href);
  return url.pathname + url.search;
}

async function load(url) {
  ui.loading += 1;
  document.body.dataset.state = "loading";
  const started = performance.now();
  let response;
  let body = null;
  try {
    response = await fetch(url, { headers: headers() });
    body = await response.json().catch(() => null);
  } catch (err) {
    showError(`The gateway did not answer: ${err}`);
    return false;
  } finally {
    ui.loading -= 1;
    if (!ui.loading) document.body.dataset.state = "idle";
    document.body.dataset.loads = String(Number(document.body.dataset.loads) + 1);
  }
  const ms = Math.round(performance.now() - started);
  const version = response.headers.get("OpenStack-API-Version") || "";
  $("request").firstElementChild.textContent =
    `GET ${url} → ${response.status} in ${ms} ms (${version})`;
  if (!response.ok) {
    showError(faultMessage(body, response));
    return false;
  }
  showError(null);
  const servers = body.servers || [];
  const next = (body.servers_links || []).find((l) => l.rel === "next");
  ui.next = next ? sameOrigin(next.href) : null;
  renderRows(servers);
  renderBanner(response.headers.get("X-Cells-Unavailable"));
  return true;
}

function renderHead() {
  const row = $("head");
  row.replaceChildren();
  for (const [label, key] of COLUMNS[$("view").value]) {
    const th = el("th", { scope: "col" }, label);
    if (key) {
      th.dataset.sort = key;
      th.tabIndex = 0;
      th.title = `sort by ${key}`;
      if (key === ui.sortKey) {
        th.classList.add("sorted");
        th.append(el("span", { class: "dir" }, ui.sortDir === "asc" ? " ▲" : " ▼"));
        th.setAttribute("aria-sort", ui.sortDir === "asc" ? "ascending" : "descending");
      }
    }
    row.append(th);
  }
}

function renderRows(servers) {
  const columns = COLUMNS[$("view").value];
  const rows = servers.map((server) => {
    // A server of a down cell at 2.69+ is a stub: id, status UNKNOWN, little else.
    const stub = server.status === "UNKNOWN" || server.name === undefined;
    const tr = el("tr", { "data-id": server.id, class: stub ? "stub" : "" });
    if (stub) tr.title = "in an unavailable cell: Nova's 2.69 stub";
    for (const [, , value] of columns) {
      const v = value(server);
      tr.append(el("td", {}, v === undefined || v === null ? "—" : String(v)));
    }
    return tr;
  });
  if (!rows.length) {
    rows.push(el("tr", {}, el("td", { colSpan: columns.length, class: "empty" }, "No servers.")));
  }
  $("rows").replaceChildren(...rows);
  const page = ui.pages.length;
  $("page-no").textContent = `Page ${page} · ${servers.length} servers`;
  $("prev").disabled = page <= 1;
  $("next").disabled = !ui.next;
}

function renderBanner(unavailable) {
  const banner = $("banner");
  banner.dataset.cells = unavailable || "";
  if (!unavailable) {
    banner.hidden = true;
    banner.textContent = "";
    return;
  }
  const [major, minor] = $("version").value.split(".").map(Number);
  const since269 = major > 2 || minor >= 69;
  // Stubs come from instance_mappings, which can keep only these orders and no filter.
  const stubbable = ["created_at", "uuid"].includes(ui.sortKey) && !$("name").value.trim();
  let where;
  if (since269 && stubbable) where = "Their servers are shown as UNKNOWN stubs (microversion 2.69 and later). ";
  else if (since269) where = "Their servers are missing from this page (stubs need the Created or ID order and no filter). ";
  else where = "Their servers are missing from this page (choose 2.69 or later to see them as stubs). ";
  banner.hidden = false;
  banner.textContent =
    `Partial listing: cells unavailable: ${unavailable}. ${where}` +
    "Paging still works; the listing completes when the cells are back.";
}

function showError(message) {
  const box = $("error");
  box.hidden = !message;
  box.textContent = message || "";
}

async function reload() {
  if (!ui.pages.length) ui.pages.push(firstPage());
  renderHead();
  return load(ui.pages[ui.pages.length - 1]);
}

async function restart() {
  ui.pages = [firstPage()];
  ui.next = null;
  return reload();
}

async function nextPage() {
  if (!ui.next) return;
  ui.pages.push(ui.next);
  if (!(await load(ui.next))) ui.pages.pop();
}

async function previousPage() {
  if (ui.pages.length <= 1) return;
  ui.pages.pop();
  await load(ui.pages[ui.pages.length - 1]);
}

function sortBy(key) {
  if (key === ui.sortKey) ui.sortDir = ui.sortDir === "asc" ? "desc" : "asc";
  else [ui.sortKey, ui.sortDir] = [key, key === "created_at" ? "desc" : "asc"];
  restart();
}

// ---- cells: health from /readyz, drills in the demo

async function refreshCells() {
  let checks = {};
  try {
    const response = await fetch("/readyz", { headers: { Accept: "application/json" } });
    checks = (await response.json()).checks || {};
  } catch (err) {
    checks = { "gateway": [{ status: "fail", output: String(err) }] };
  }
  let drills = {};
  if (ui.config && ui.config.demo) {
    const response = await fetch("/console/drills", { headers: headers() }).catch(() => null);
    if (response && response.ok) drills = (await response.json()).drills;
  }
  recoverWhenBack(checks);
  // Redraw only on a change: a poll must not replace a button under the pointer.
  const seen = JSON.stringify([checks, drills]);
  if (seen === ui.cellsSeen) return;
  ui.cellsSeen = seen;
  const items = Object.entries(checks).map(([name, [check]]) => {
    const cell = name.startsWith("cell:") ? name.slice(5) : null;
    const breaker = check.breaker || "";
    const state = check.status !== "pass" || breaker === "open" ? "down" : breaker === "half-open" ? "probing" : "up";
    const li = el("li", { class: `cell ${state}`, "data-cell": cell || name, "data-status": check.status });
    li.append(el("span", { class: "dot", "aria-hidden": "true" }));
    li.append(el("b", {}, cell || name.replace("_", " ")));
    li.append(el("span", { class: "detail" }, check.status + (breaker ? ` · breaker ${breaker}` : "")));
    if (check.output) li.title = check.output;
    if (cell && cell in drills) li.append(drillButtons(cell, drills[cell]));
    return li;
  });
  $("cell-list").replaceChildren(...items);
}

function recoverWhenBack(checks) {
  // A partial page is asked again once a missing cell answers /readyz (which does not
  // probe a cell while its breaker's cooldown runs), so the listing completes by itself.
  const missing = (document.getElementById("banner").dataset.cells || "").split(",");
  const back = missing.some((cell) => {
    const [check] = checks[`cell:${cell}`] || [{}];
    return check.status === "pass";
  });
  if (back && !ui.loading) reload();
}

function drillButtons(cell, current) {
  const box = el("span", { class: "drills" });
  for (const [drill, label] of [["down", "Down"], ["hang", "Hang"], ["slow", "Slow"], ["none", "Restore"]]) {
    const button = el("button", { type: "button", "data-drill": drill, "data-cell": cell }, label);
    if (drill === current && drill !== "none") button.classList.add("active");
    button.disabled = drill === "none" ? current === "none" : drill === current;
    button.addEventListener("click", () => drill_(cell, drill));
    box.append(button);
  }
  return box;
}

async function drill_(cell, drill) {
  const response = await fetch(`/console/drills/${encodeURIComponent(cell)}`, {
    method: "PUT",
    headers: { ...headers(), "Content-Type": "application/json" },
    body: JSON.stringify({ drill }),
  });
  if (!response.ok) {
    showError(faultMessage(await response.json().catch(() => null), response));
    return;
  }
  await refreshCells();
  await reload();
  await refreshCells();
}

// ---- wiring

async function main() {
  ui.config = await (await fetch("/console/config")).json();
  const versions = [...VERSIONS, ui.config.max_version].filter((v, i, all) => all.indexOf(v) === i);
  $("version").replaceChildren(...versions.map((v) => el("option", { value: v }, v)));
  const saved = sessionStorage.getItem("cellgate.token");
  $("token").value = saved || ui.config.token_hint || "";
  $("all-projects").checked = Boolean(ui.config.token_hint);
  $("drill-note").hidden = !ui.config.demo;

  $("token").addEventListener("change", () => {
    sessionStorage.setItem("cellgate.token", $("token").value);
    restart();
  });
  for (const id of ["version", "view", "limit", "all-projects"]) {
    $(id).addEventListener("change", restart);
  }
  $("settings").addEventListener("submit", (e) => e.preventDefault());
  $("filter").addEventListener("submit", (e) => {
    e.preventDefault();
    restart();
  });
  $("clear").addEventListener("click", () => {
    $("name").value = "";
    restart();
  });
  $("head").addEventListener("click", (e) => {
    const th = e.target.closest("th[data-sort]");
    if (th) sortBy(th.dataset.sort);
  });
  $("head").addEventListener("keydown", (e) => {
    const th = e.target.closest("th[data-sort]");
    if (th && (e.key === "Enter" || e.key === " ")) sortBy(th.dataset.sort);
  });
  $("next").addEventListener("click", nextPage);
  $("prev").addEventListener("click", previousPage);

  await refreshCells();
  await restart();
  setInterval(refreshCells, READY_EVERY_MS);
}

main();
