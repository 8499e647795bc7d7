// The hall's pages: live over Server-Sent Events (EventSource reconnects by itself), no reloads.
const Hall = (() => {
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  const STATUS = {closed: "未登录", idle: "空闲", calling: "呼叫中", serving: "办理中", paused: "暂停服务"};
  const STATE = {ok: "正常", warning: "提醒", fault: "故障", offline: "离线", unknown: "未知"};
  // The coordinator's clock, not this browser's: its latest reading (the queue summary's time,
  // republished at least every 30 s) plus the time passed here since it arrived.
  let clock = null;
  const sync = (s) => { const at = s.queue && s.queue.updated_at;
    if (at && (!clock || clock.at !== at)) clock = {at, ms: Date.parse(at), seen: performance.now()}; };
  const hallNow = () => (clock ? clock.ms + (performance.now() - clock.seen) : Date.now());
  // A time as the hall's clock reads it (the hall's UTC offset from the page), not this browser's zone.
  const offsetMs = () => Number(document.body.dataset.utcOffset ?? 8) * 3600000;
  const hallClock = (iso) => (iso ? new Date(Date.parse(iso) + offsetMs()).toISOString().slice(11, 19) : "");
  const since = (iso) => { if (!iso) return ""; const s = Math.max(0, (hallNow() - Date.parse(iso)) / 1000);
    return s < 3600 ? `${Math.floor(s / 60)}分${Math.floor(s % 60)}秒` : `${Math.floor(s / 3600)}时${Math.floor(s % 3600 / 60)}分`; };

  function live(render) {
    const dot = document.getElementById("live");
    const source = new EventSource("/events");
    source.onmessage = (e) => { if (dot) dot.className = "live on"; const s = JSON.parse(e.data); sync(s); render(s); };
    source.onerror = () => { if (dot) dot.className = "live off"; };  // EventSource retries on its own
  }

  // The action next to an alert: 补打 a failed ticket, open the window's console or the devices.
  function alertAction(a) {
    if (a.kind === "print_failed") return `<form method="post" action="/staff/reprint" class="inline">
      <input type="hidden" name="number" value="${esc(a.subject)}"><button class="alert-reprint">补打 Reprint</button></form>`;
    if (a.kind === "paused_with_waiting") return `<a class="alert-go" href="/console?window=${encodeURIComponent(a.subject)}">去窗口 Go to the window</a>`;
    if (["device_offline", "device_fault", "paper_out", "paper_near_end"].includes(a.kind)) return `<a class="alert-go" href="/devices">查看设备 Devices</a>`;
    if (["long_wait", "overtime"].includes(a.kind)) return `<a class="alert-go" href="/staff">服务台 Staff desk</a>`;
    if (a.kind === "case_overdue") return `<a class="alert-go" href="/cases?state=#${encodeURIComponent(a.subject)}">查看工单 Open the case</a>`;
    return "";
  }

  function overview(s) {
    document.getElementById("windows").innerHTML = s.windows.map((w) => `<tr class="status-${esc(w.status)}" data-window="${w.number}">
      <td>${w.number} ${esc(w.name)}</td><td>${esc(STATUS[w.status] || w.status)}${w.pause_reason ? " · " + esc(w.pause_reason) : ""}</td>
      <td class="clerk">${esc(w.clerk_name || w.clerk_id)}</td><td class="ticket">${esc(w.ticket_number)}</td><td>${w.status === "closed" ? "" : since(w.since)}</td><td>${w.waiting ?? 0}</td></tr>`).join("");
    const rows = (s.queue ? s.queue.services : []).filter((q) => q.waiting > 0);
    document.getElementById("queues").innerHTML = rows.map((q) => `<tr><td>${esc(q.service_name || q.service_id)}</td><td>${esc(q.prefix)}</td>
      <td>${q.waiting}</td><td>${Math.round(q.longest_wait_s / 60)} 分</td><td>${q.estimated_minutes} 分</td></tr>`).join("") || "<tr><td colspan=5>无人等候 Nobody waiting</td></tr>";
    const help = document.getElementById("help");
    if (help) help.innerHTML = (s.help || []).map((h) => `<li class="alert help-${esc(h.state)}" data-kiosk="${esc(h.kiosk_id)}">
      ${esc(hallClock(h.raised_at))} ${esc(h.location.zh)}（${esc(h.kiosk_id)}）${h.state === "answered" ? `· ${esc(h.answered_by)} 已应答 on the way` : "· 等待应答 waiting"}
      ${h.state === "open" ? `<form method="post" action="/help/${encodeURIComponent(h.kiosk_id)}/answer" class="inline"><button class="help-answer">应答 Answer</button></form>` : ""}
      <form method="post" action="/help/${encodeURIComponent(h.kiosk_id)}/close" class="inline"><button class="help-close">办结 Close</button></form></li>`).join("") || "<li>无 None</li>";
    document.getElementById("alerts").innerHTML = s.alerts.map((a) => `<li class="alert ${esc(a.kind)}" data-alert="${esc(a.alert_id)}">
      <span class="at">${esc(hallClock(a.raised_at))}</span> ${esc(a.message.zh)} <span class="en">${esc(a.message.en)}</span> ${alertAction(a)}
      ${a.ack ? `<span class="ack">${esc(a.ack.by)} 已确认 ${esc(hallClock(a.ack.at))}</span>` : `<form method="post" action="/alerts/ack" class="inline">
        <input type="hidden" name="alert_id" value="${esc(a.alert_id)}"><input type="hidden" name="raised_at" value="${esc(a.raised_at)}">
        <button class="alert-ack">确认 Acknowledge</button></form>`}</li>`).join("") || "<li>无告警 No alerts</li>";
  }

  function devices(s) {
    const table = document.getElementById("device-table");
    const places = JSON.parse(table.dataset.places || "{}"), words = JSON.parse(table.dataset.words || "{}");
    const fault = (f) => (words.faults || {})[f] || f;
    document.getElementById("devices").innerHTML = s.devices.map((d) => `<tr class="state-${esc(d.state)}" data-device="${esc(d.device_id)}">
      <td>${esc(d.device_id)}</td><td>${esc((words.kinds || {})[d.kind] || d.kind)}</td><td class="place">${esc(places[d.device_id] || "")}</td>
      <td class="state">${esc(STATE[d.state] || d.state)}</td>
      <td class="faults">${esc((d.faults || []).map(fault).join("、"))}</td><td>${esc(hallClock(d.updated_at))}</td>
      <td class="heard">${d.seen ? esc(hallClock(new Date(d.seen * 1000).toISOString())) : ""}</td>
      <td>${Object.entries(d.members || {}).filter(([, v]) => v !== "ok").map(([k, v]) => esc(k) + "：" + esc(STATE[v] || v)).join(" ")}</td></tr>`).join("");
  }

  const CLASS = {normal: "普通", priority: "优先", appointment: "预约", green: "绿色通道", transferred: "转办"};

  function consoleOf(window_) {
    const box = document.getElementById("buttons");
    const allowed = JSON.parse(box.dataset.allowed || "{}"), me = box.dataset.me;
    const pick = (action, number, label) => `<form method="post" action="/console/${window_}/${action}" class="inline">
      <input type="hidden" name="ticket_number" value="${esc(number)}"><button class="pick" data-action="${action}">${esc(label)} ${esc(number)}</button></form>`;
    const refresh = async () => {
      const r = await fetch(`/console/${window_}/queue.json`, {headers: {accept: "application/json"}});
      if (!r.ok) return;
      const q = await r.json();
      const st = q.state || {status: "closed"};
      const can = allowed[st.status] || [];
      // A button is enabled exactly when the coordinator's window table accepts its action now.
      for (const b of document.querySelectorAll("button[data-action]")) b.disabled = !can.includes(b.dataset.action);
      document.getElementById("status").textContent = STATUS[st.status] || "未登录";
      document.getElementById("pause-shown").textContent = st.pause_reason ? `· ${st.pause_reason}` : "";
      document.getElementById("clerk").textContent = st.status === "closed" ? "无人在岗 nobody" : (q.clerk_name || st.clerk_id || "—");
      document.getElementById("not-me").hidden = st.status === "closed" || !st.clerk_id || st.clerk_id === me;
      const cur = q.current;
      document.getElementById("current").textContent = (cur && cur.number) || st.ticket_number || "—";
      document.getElementById("current-service").textContent = cur ? `事项 ${cur.service}` : "";
      document.getElementById("current-class").textContent = cur ? `类别 ${CLASS[cur.ticket_class] || cur.ticket_class}` : "";
      document.getElementById("current-wait").textContent = cur ? `等候 ${cur.waited_min} 分钟` : "";
      document.getElementById("materials").innerHTML = (cur ? cur.materials : []).map((m) => `<li>${esc(m)}</li>`).join("");
      document.getElementById("held").innerHTML = (st.held || []).map((n) => pick("call_back", n, "回呼")).join("") || "无 none";
      document.getElementById("no-show").innerHTML = (q.no_show || []).map((n) => pick("reactivate", n, "激活")).join("") || "无 none";
      for (const b of document.querySelectorAll("#held button, #no-show button")) b.disabled = !can.includes(b.dataset.action);
      document.getElementById("count").textContent = q.count || 0;
      // 特呼: a chosen ticket before its turn, with the reason (kept with the call and audited)
      if (!document.querySelector("#queue input:focus"))  // never wipe a reason being typed
      document.getElementById("queue").innerHTML = (q.waiting || []).map((t) => `<tr data-ticket="${esc(t.number)}"><td>${esc(t.number)}</td><td>${esc(CLASS[t.ticket_class] || t.ticket_class)}</td><td>${esc(t.service)}</td><td>${t.waited_min} 分</td>
        <td><form method="post" action="/console/${window_}/call_ticket" class="inline"><input type="hidden" name="ticket_number" value="${esc(t.number)}">
        <input name="reason" required maxlength="64" size="8" placeholder="特呼原因 Reason"><button class="call-ticket" data-action="call_ticket"${can.includes("call_ticket") ? "" : " disabled"}>特呼 Call now</button></form></td></tr>`).join("");
    };
    // Shortcuts: one key per common action, never while typing in a field.
    document.addEventListener("keydown", (e) => {
      if (e.ctrlKey || e.altKey || e.metaKey || /^(INPUT|SELECT|TEXTAREA)$/.test(e.target.tagName)) return;
      const b = document.querySelector(`button[data-key="${e.key.toUpperCase()}"]`);
      if (b && !b.disabled) { e.preventDefault(); b.click(); }
    });
    refresh();
    live((s) => { const w = s.windows.find((x) => x.number === window_); if (w) refresh(); });
  }

  function ticket(token) {
    const show = async () => {
      const r = await fetch(`/t/${encodeURIComponent(token)}/state.json`);
      if (!r.ok) { document.getElementById("number").textContent = "号票无效 Not found"; return; }
      const t = await r.json();
      document.getElementById("number").textContent = t.number;
      document.getElementById("service").textContent = `${t.service_name.zh} ${t.service_name.en}`;
      const where = document.getElementById("where"), ahead = document.getElementById("ahead");
      if (t.window) { where.textContent = `请到${t.window}号窗口 Please go to window ${t.window}`; ahead.textContent = ""; }
      else if (t.status === "waiting") { where.textContent = `等候中 Waiting`; ahead.textContent = `前面还有 ${t.people_ahead} 人，预计约 ${t.estimated_minutes} 分钟 · ${t.people_ahead} ahead, about ${t.estimated_minutes} min`; }
      else { where.textContent = ({done: "已办结 Done", no_show: "已过号 Missed: ask at a window", held: "挂起 On hold", expired: "已过期 Expired"})[t.status] || t.status; ahead.textContent = ""; }
    };
    show();
    setInterval(show, 3000);
  }

  function countdowns() {  // by the coordinator's clock (its latest summary), not the browser's
    fetch("/state.json").then((r) => r.json()).then(sync).catch(() => {}).finally(() => {
      for (const el of document.querySelectorAll(".deadline[data-open='1']")) {  // a closed case no longer counts down
        const days = Math.ceil((Date.parse(el.dataset.deadline) - hallNow()) / 86400000);
        el.textContent += days >= 0 ? `（剩 ${days} 天 ${days} days left）` : `（超期 ${-days} 天 overdue）`;
      }
    });
  }

  function charts(d) {
    const layout = (title) => ({title: {text: title}, margin: {t: 40, l: 40, r: 10, b: 40}, height: 300});
    const days = d.daily || {days: []};
    if (days.days.length) {  // a range: the day-by-day trend
      Plotly.newPlot("chart-days", [
        {type: "scatter", mode: "lines+markers", name: "取号 Issued", x: days.days, y: days.issued},
        {type: "scatter", mode: "lines+markers", name: "办结 Served", x: days.days, y: days.served},
        {type: "scatter", mode: "lines+markers", name: "满意率% Satisfaction", x: days.days, y: days.satisfaction, yaxis: "y2"}],
        {...layout("每日趋势 Day by day"), yaxis2: {overlaying: "y", side: "right", range: [0, 100]}}, {staticPlot: true});
    }
    const hours = Object.keys(d.tickets_per_hour || {});
    Plotly.newPlot("chart-hours", [{type: "bar", x: hours.map((h) => h + "时"), y: hours.map((h) => d.tickets_per_hour[h])}], layout("每小时取号 Tickets per hour"), {staticPlot: true});
    Plotly.newPlot("chart-waits", [{type: "bar", x: (d.wait_minutes || {}).labels || [], y: (d.wait_minutes || {}).counts || []}], layout("等候时长(分) Wait (min)"), {staticPlot: true});
    const sat = (d.satisfaction_per_window || []);
    Plotly.newPlot("chart-satisfaction", [{type: "bar", x: sat.map((w) => w.window + "号"), y: sat.map((w) => w.satisfaction_pct)}], layout("满意率 Satisfaction %"), {staticPlot: true});
  }

  return {live, overview, devices, console: consoleOf, ticket, countdowns, charts};
})();
