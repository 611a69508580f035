// Utility billing: search, Manage Bills, bill details, summary, consumption, address, preferences, autopay.

import { get, post, put, del, ApiError } from "../api.js";
import { h, card, dl, date, money, field, onSubmit, submitButton, requireFields, notice, loadError, alertBox, table, nextId } from "../ui.js";
import { billFigure, pageHeader, accountTabs, billsToCart, utilityBillColumns, totalRow } from "../components.js";
import { items } from "./home.js";

const enc = encodeURIComponent;
const PATHS = {
  remembered: "/me/remembered-values/utility",
  search: "/utility/searches",
  account: (n) => `/accounts/${enc(n)}`,
  bills: (n, status) => `/accounts/${enc(n)}/bills?status=${status}`,
  summary: (n) => `/accounts/${enc(n)}/summary`,
  consumption: (n) => `/accounts/${enc(n)}/consumption`,
  preferences: (n) => `/accounts/${enc(n)}/preferences`,
  addressRequests: (n) => `/accounts/${enc(n)}/address-changes`,
  cancelAddress: (n, id) => `/address-changes/${enc(id)}`,
  autopay: (n) => `/accounts/${enc(n)}/autopay`,
  cardSetup: (n) => `/accounts/${enc(n)}/autopay/card-setups`,
  bill: (b) => `/bills/${enc(b)}`,
  billPdf: (b) => `/api/v1/bills/${enc(b)}/pdf`,
};

async function accountHeading(n, title, current) {
  let details = null;
  try {
    details = await get(PATHS.account(n));
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) throw err;
  }
  return {
    details,
    head: [
      pageHeader(title, null, [["/utility", "Utility billing"], [null, `Account ${n}`]]),
      details
        ? h("p", { class: "account-line" }, h("span", {}, `Account ${details.account_number}`), h("span", {}, details.service_address || ""), h("span", {}, details.customer_name || ""))
        : h("p", { class: "account-line" }, `Account ${n}`),
      accountTabs(n, current),
    ],
  };
}

function notFound(title, err, what) {
  return [pageHeader(title, null, [["/utility", "Utility billing"], [null, title]]), loadError(err, what)];
}

// ---- search -------------------------------------------------------------------

async function searchPage({ app, query }) {
  if (!app.me) {
    return [
      pageHeader("Utility billing", "Find your utility account to see bills, usage and to pay."),
      h(
        "div",
        { class: "grid" },
        card("Sign in to find your account", h("p", {}, "Searching links the account to your user ID, so you can come back to it."), h("p", {}, h("a", { class: "btn btn-primary", href: "/sign-in?next=/utility" }, "Sign in"), " ", h("a", { class: "btn btn-secondary", href: "/register" }, "Register"))),
        card("Pay without registering", h("p", {}, "Pay the bills of one account with its account and customer numbers."), h("p", {}, h("a", { class: "btn btn-secondary", href: "/quick-pay" }, "Quick pay"))),
      ),
    ];
  }
  let remembered = null;
  try {
    const data = await get(PATHS.remembered);
    remembered = data && data.values;
  } catch {
    remembered = null;
  }
  let links = [];
  try {
    links = items(await get("/me/links"), "links").filter((l) => l.type !== "customer");
  } catch {
    links = [];
  }
  const results = h("div", { id: "search-results" });
  const form = h(
    "form",
    { class: "stack", id: "utility-search" },
    field({ name: "account_number", label: "Account number", inputmode: "numeric", autocomplete: "off", required: true, value: query.get("account_number") || (remembered && remembered.account_number) || "", hint: "The first number in “Account Number - Customer Number”." }),
    field({ name: "customer_id", label: "Customer number", inputmode: "numeric", autocomplete: "off", required: true, value: query.get("customer_id") || (remembered && remembered.customer_id) || "", hint: "The second number, also called customer ID." }),
    field({ name: "remember", label: "Remember these values", type: "checkbox", checked: Boolean(remembered), hint: "We fill them in for you next time." }),
    h("div", { class: "actions" }, submitButton("Search"), h("button", { type: "reset", class: "btn" }, "Reset")),
  );
  onSubmit(
    form,
    async (v) => {
      const data = await post(PATHS.search, { account_number: v.account_number, customer_id: v.customer_id, remember: v.remember });
      const found = items(data, "results");
      results.replaceChildren(
        h("h2", { tabindex: "-1", id: "results-h" }, "Search results"),
        h("p", { role: "status" }, `${found.length} found`),
        table({
          caption: "Accounts found",
          captionHidden: true,
          columns: [
            { label: "Customer name", key: "customer_name" },
            { label: "Service address", cell: (r) => [r.service_address, r.service_city_state_zip ? h("br") : null, r.service_city_state_zip || ""] },
            { label: "Account number", key: "account_number" },
            { label: "Customer ID", key: "customer_id" },
            { label: "Parcel ID", cell: (r) => r.parcel_id || "" },
            { label: "", cell: (r) => h("a", { href: `/accounts/${enc(r.account_number)}`, class: "btn btn-small" }, "Manage Bills", h("span", { class: "visually-hidden" }, ` for account ${r.account_number}`)) },
          ],
          rows: found,
        }),
        h("p", {}, h("a", { href: "#utility-search", on: { click: (e) => { e.preventDefault(); form.querySelector("input").focus(); } } }, "Modify search")),
      );
      document.getElementById("results-h").focus();
      await app.refreshMe();
    },
    (v) => requireFields(v, { account_number: "account number", customer_id: "customer number" }),
    { pair: ["account_number", "customer_id"] },
  );
  return [
    pageHeader("Utility billing", "Enter the account number and customer number from the top of your bill."),
    h("div", { class: "with-figure card" }, h("div", {}, form), billFigure()),
    results,
    links.length
      ? card(
          "Your linked utility accounts",
          table({
            caption: "Your linked utility accounts",
            captionHidden: true,
            columns: [
              { label: "Account", key: "account_number" },
              { label: "Service address", cell: (l) => l.service_address || l.location || "" },
              { label: "", cell: (l) => h("a", { href: `/accounts/${enc(l.account_number)}` }, "Manage Bills", h("span", { class: "visually-hidden" }, ` for account ${l.account_number}`)) },
            ],
            rows: links,
          }),
        )
      : null,
  ];
}

// ---- Manage Bills -------------------------------------------------------------

async function manageBillsPage({ params, app }) {
  const n = params.account;
  let head;
  let data;
  try {
    [{ head }, data] = await Promise.all([accountHeading(n, "Manage bills", `/accounts/${enc(n)}`), get(PATHS.bills(n, "outstanding"))]);
  } catch (err) {
    return notFound("Manage bills", err, `Account ${n}`);
  }
  const bills = items(data, "bills");
  const years = data.bill_years && data.bill_years.from ? ` (bill years ${data.bill_years.from} to ${data.bill_years.to})` : "";
  return [
    head,
    h(
      "section",
      { class: "card", "aria-labelledby": "outstanding-h" },
      h("div", { class: "row-between" }, h("h2", { id: "outstanding-h" }, "Outstanding bills"), data.as_of ? h("p", { class: "muted" }, `As of ${date(data.as_of)}`) : null),
      billsToCart({
        caption: `Outstanding bills${years}`,
        bills,
        columns: utilityBillColumns,
        totals: totalRow(utilityBillColumns.length, "Total due", money(data.total_due)),
        app,
        emptyText: "Nothing is due on this account. Thank you!",
      }),
      bills.some((b) => b.pending_web_payment) ? h("p", { class: "hint" }, "“Web payment pending”: a payment made online is being processed.") : null,
    ),
    h(
      "ul",
      { class: "quick-links" },
      h("li", {}, h("a", { href: `/accounts/${enc(n)}/bills` }, "All bills, paid and unpaid")),
      h("li", {}, h("a", { href: `/accounts/${enc(n)}/autopay` }, "Sign up for automatic payments")),
      h("li", {}, h("a", { href: `/accounts/${enc(n)}/summary` }, "Account summary")),
      h("li", {}, h("a", { href: "/settings/links/new" }, "Link accounts")),
    ),
  ];
}

async function allBillsPage({ params }) {
  const n = params.account;
  let head;
  let data;
  try {
    [{ head }, data] = await Promise.all([accountHeading(n, "All bills", `/accounts/${enc(n)}/bills`), get(PATHS.bills(n, "all"))]);
  } catch (err) {
    return notFound("All bills", err, `Account ${n}`);
  }
  return [
    head,
    card(
      "All bills",
      table({
        caption: "Every bill of this account",
        captionHidden: true,
        columns: [...utilityBillColumns, { label: "Status", cell: (b) => (Number(b.balance_due) > 0 ? "Open" : "Paid") }],
        rows: items(data, "bills"),
      }),
    ),
  ];
}

// ---- bill details -------------------------------------------------------------

async function billPage({ params, app }) {
  const b = params.bill;
  let bill;
  try {
    bill = await get(PATHS.bill(b));
  } catch (err) {
    return [pageHeader(`Bill ${b}`), loadError(err, `Bill ${b}`)];
  }
  const general = !bill.account_number;
  const crumbs = general
    ? [["/general", "General billing"], [`/customers/${enc(bill.customer_id)}`, `Customer ${bill.customer_id}`], [null, `Bill ${b}`]]
    : [["/utility", "Utility billing"], [`/accounts/${enc(bill.account_number)}`, `Account ${bill.account_number}`], [null, `Bill ${b}`]];
  const lines = bill.lines || [];
  const addButton = h(
    "button",
    {
      type: "button",
      class: "btn btn-primary",
      disabled: Number(bill.balance_due) <= 0 || undefined,
      on: {
        click: async (event) => {
          event.target.disabled = true;
          try {
            app.setCart(await post("/cart/items", { bill_number: b }));
            notice(`Bill ${b} was added to your cart. Open My Cart to check out.`, "success");
          } catch (err) {
            notice(err.message, "error");
          }
          event.target.disabled = false;
        },
      },
    },
    "Add to Cart",
  );
  return [
    pageHeader(`Bill ${bill.bill_number}`, bill.description || bill.bill_type || null, crumbs),
    h(
      "div",
      { class: "bill-summary card" },
      h("div", { class: "due" }, h("p", { class: "muted" }, "Balance due"), h("p", { class: "big" }, money(bill.balance_due)), h("p", {}, `Pay by ${date(bill.due_date)}`), bill.pending_web_payment ? h("span", { class: "badge" }, "Web payment pending") : null),
      h("div", { class: "actions" }, addButton, h("a", { class: "btn", href: PATHS.billPdf(b), download: `bill-${b}.pdf` }, "Download the bill (PDF)")),
    ),
    h(
      "div",
      { class: "grid" },
      card(
        "Bill",
        dl([
          ["Customer name", bill.customer_name],
          ["Service address", bill.service_address],
          ["Bill number", bill.bill_number],
          ["Account number - Customer number", general ? null : `${bill.account_number} - ${bill.customer_id}`],
          ["Customer ID", general ? bill.customer_id : null],
          ["Bill type", bill.bill_type],
          ["Statement date", date(bill.statement_date)],
          ["Current billing due date", date(bill.due_date)],
        ]),
      ),
      general
        ? null
        : card(
            "Meter",
            dl([
              ["Meter number", bill.meter_number],
              ["Previous read date", date(bill.previous_read_date)],
              ["Current read date", date(bill.current_read_date)],
              ["Previous meter read", bill.previous_reading],
              ["Current meter read", bill.current_reading],
              ["Usage (units)", bill.usage_units],
              ["Gallons", bill.gallons],
            ]),
            h("p", { class: "hint" }, "1 unit = 1 CCF = 748 gallons"),
          ),
    ),
    card(
      "Charges",
      table({
        caption: "Charges on this bill",
        captionHidden: true,
        columns: [
          { label: "Description", key: "description" },
          { label: "Amount", num: true, cell: (l) => (l.amount === null || l.amount === undefined ? "" : money(l.amount)) },
        ],
        rows: lines,
        footer: [
          Number(bill.previous_balance) ? totalRow(1, "Previous balance", money(bill.previous_balance)) : null,
          Number(bill.payments) ? totalRow(1, "Payments", money(bill.payments)) : null,
          Number(bill.penalty_assessed || bill.penalty) ? totalRow(1, "Penalty", money(bill.penalty_assessed || bill.penalty)) : null,
          totalRow(1, "Current charges", money(bill.charges)),
          totalRow(1, "Balance due", money(bill.balance_due)),
        ],
      }),
    ),
  ];
}

// ---- Account Summary ----------------------------------------------------------

async function summaryPage({ params }) {
  const n = params.account;
  let head;
  let details;
  let summary;
  try {
    ({ head, details } = await accountHeading(n, "Account summary", `/accounts/${enc(n)}/summary`));
    summary = await get(PATHS.summary(n));
  } catch (err) {
    return notFound("Account summary", err, `Account ${n}`);
  }
  const services = summary.services || (details && details.services) || [];
  const mailing = details && details.mailing_address;
  return [
    head,
    h(
      "div",
      { class: "grid" },
      card("Billing account", dl([["Service address", details && details.service_address], ["", details && details.service_city_state_zip], ["Account number", n], ["Status", details && details.status]])),
      card(
        "Your current balance",
        h("p", { class: "big" }, money(summary.amount_due_now)),
        dl([["Amount due now", money(summary.amount_due_now)], ["Payment due date", date(summary.payment_due_date)]]),
        Number(summary.amount_due_now) > 0 ? h("p", {}, h("a", { class: "btn btn-primary", href: `/accounts/${enc(n)}` }, "Pay now")) : null,
      ),
      card(
        "Customer information",
        details
          ? dl([
              ["Name", details.customer_name],
              ["Address", mailing ? mailing.text || [mailing.line1, mailing.line2, mailing.city_state_zip].filter(Boolean).join(", ") : ""],
              ["Customer ID", details.customer_id],
              ["Address change on file", details.upcoming_mailing_address ? details.upcoming_mailing_address.text || "Pending" : null],
            ])
          : alertBox("Customer information is unavailable right now."),
        h("p", {}, h("a", { href: `/accounts/${enc(n)}/address` }, "Request change of address")),
      ),
    ),
    card(
      "About your payments",
      (summary.payments || []).length
        ? table({
            caption: "Payments by bill",
            captionHidden: true,
            columns: [
              { label: "Bill", cell: (p) => h("a", { href: `/bills/${enc(p.bill_number)}` }, p.bill_number) },
              { label: "Last posted", cell: (p) => date(p.last_posted) },
              { label: "Sum of payments", num: true, cell: (p) => money(p.sum_of_payments) },
            ],
            rows: summary.payments,
          })
        : h("p", { class: "empty" }, "No payments yet."),
    ),
    card(
      "Services",
      table({
        caption: "Services on this account",
        captionHidden: true,
        columns: [
          { label: "Service", cell: (s) => s.service || s.name },
          { label: "Code", key: "code" },
          { label: "Start date", cell: (s) => date(s.start_date) },
          { label: "Stop date", cell: (s) => date(s.stop_date) },
          { label: "Status", cell: (s) => s.status || "" },
          { label: "Consumption history", cell: (s) => (s.has_consumption ? h("a", { href: `/accounts/${enc(n)}/consumption#service-${s.code}` }, "View consumption", h("span", { class: "visually-hidden" }, ` for ${s.service || s.code}`)) : "None") },
        ],
        rows: services,
      }),
    ),
  ];
}

// ---- consumption history ------------------------------------------------------

/** A bar chart drawn as SVG; the table below it carries the same numbers for screen readers. */
export function usageChart(service) {
  const periods = service.periods || [];
  const values = periods.map((p) => Number(p.usage_units) || 0);
  const max = Math.max(1, ...values);
  const W = 640;
  const H = 260;
  const left = 48;
  const bottom = 40;
  const top = 30;
  const plotH = H - bottom - top;
  const step = (W - left - 8) / Math.max(1, periods.length);
  const barW = Math.max(6, Math.min(48, step * 0.6));
  const titleId = nextId("chart-t");
  const descId = nextId("chart-d");
  const ticks = 4;
  const grid = [];
  for (let i = 0; i <= ticks; i += 1) {
    const v = (max / ticks) * i;
    const y = top + plotH - (v / max) * plotH;
    grid.push(
      h("svg:line", { x1: left, x2: W - 4, y1: y, y2: y, class: "chart-grid" }),
      h("svg:text", { x: left - 6, y: y + 4, "text-anchor": "end", class: "chart-label" }, Number.isInteger(v) ? String(v) : v.toFixed(1)),
    );
  }
  const bars = periods.map((p, i) => {
    const v = values[i];
    const barH = (v / max) * plotH;
    const x = left + i * step + (step - barW) / 2;
    const y = top + plotH - barH;
    return h(
      "svg:g",
      {},
      h("svg:rect", { x, y, width: barW, height: Math.max(barH, 1), rx: 2, class: p.read_type === "estimated" ? "chart-bar estimated" : "chart-bar" }),
      h("svg:text", { x: x + barW / 2, y: H - bottom + 16, "text-anchor": "middle", class: "chart-label" }, shortDate(p.to)),
    );
  });
  const summary = periods.length
    ? `Usage in ${service.unit || "units"} for ${periods.length} billing periods, from ${date(periods[0].from)} to ${date(periods[periods.length - 1].to)}; highest ${max}.`
    : "No usage recorded.";
  return h(
    "svg:svg",
    { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-labelledby": `${titleId} ${descId}`, focusable: "false" },
    h("svg:title", { id: titleId }, `${service.name} usage by billing period`),
    h("svg:desc", { id: descId }, `${summary} The table below lists every period.`),
    grid,
    h("svg:line", { x1: left, x2: W - 4, y1: top + plotH, y2: top + plotH, class: "chart-axis" }),
    bars,
    h("svg:text", { x: left - 6, y: 14, "text-anchor": "end", class: "chart-label" }, service.unit || "units"),
  );
}

function shortDate(iso) {
  const m = /^(\d{4})-(\d{2})/.exec(iso || "");
  return m ? `${m[2]}/${m[1].slice(2)}` : "";
}

async function consumptionPage({ params }) {
  const n = params.account;
  let head;
  let data;
  try {
    [{ head }, data] = await Promise.all([accountHeading(n, "Consumption history", `/accounts/${enc(n)}/consumption`), get(PATHS.consumption(n))]);
  } catch (err) {
    return notFound("Consumption history", err, `Account ${n}`);
  }
  const services = items(data, "services").filter((s) => (s.periods || []).length);
  return [
    head,
    services.length
      ? services.map((s) =>
          h(
            "section",
            { class: "card", id: `service-${s.code}`, "aria-labelledby": `service-${s.code}-h` },
            h("h2", { id: `service-${s.code}-h` }, `${s.name} (${s.code})`),
            h("p", { class: "hint" }, `1 ${s.unit || "unit"} = ${s.gallons_per_unit || 748} gallons. Lighter bars are estimated reads.`),
            h("div", { class: "chart-wrap" }, usageChart(s)),
            table({
              caption: `${s.name}: usage by billing period`,
              columns: [
                { label: "Period", cell: (p) => `${date(p.from)} – ${date(p.to)}` },
                { label: "Days", num: true, key: "days" },
                { label: `Usage (${s.unit || "units"})`, num: true, key: "usage_units" },
                { label: "Gallons", num: true, key: "gallons" },
                { label: "Gallons per day", num: true, cell: (p) => p.average_daily_gallons || "" },
                { label: "Read", cell: (p) => p.read_type || "" },
                { label: "Bill", cell: (p) => (p.bill_number ? h("a", { href: `/bills/${enc(p.bill_number)}` }, p.bill_number) : "") },
              ],
              rows: s.periods,
            }),
          ),
        )
      : h("p", { class: "empty" }, "There is no metered usage on this account yet."),
  ];
}

// ---- change of address --------------------------------------------------------

async function addressPage({ params, app }) {
  const n = params.account;
  let head;
  let details;
  let requests = [];
  try {
    ({ head, details } = await accountHeading(n, "Request a change of address", `/accounts/${enc(n)}/address`));
  } catch (err) {
    return notFound("Request a change of address", err, `Account ${n}`);
  }
  let requestsError = null;
  try {
    requests = items(await get(PATHS.addressRequests(n)), "requests");
  } catch (err) {
    requestsError = loadError(err, "Your address change requests");
  }
  const pending = requests.find((r) => r.status === "pending");
  const today = new Date().toISOString().slice(0, 10);
  const form = h(
    "form",
    { class: "stack" },
    field({ name: "address_line1", label: "Street address", autocomplete: "address-line1", required: true }),
    field({ name: "address_line2", label: "Apartment, suite, PO box (optional)", autocomplete: "address-line2" }),
    h(
      "div",
      { class: "row-fields" },
      field({ name: "city", label: "City", autocomplete: "address-level2", required: true }),
      field({ name: "state", label: "State", autocomplete: "address-level1", required: true, maxlength: 2, width: "short", hint: "2 letters" }),
      field({ name: "zip", label: "ZIP code", autocomplete: "postal-code", inputmode: "numeric", required: true, width: "short" }),
    ),
    field({ name: "effective_date", label: "Effective date", type: "date", required: true, value: today }),
    submitButton("Send request"),
  );
  onSubmit(
    form,
    async (v) => {
      await post(PATHS.addressRequests(n), v);
      notice("Your request was sent. Customer Service will review it and email you.", "success");
      app.navigate(location.pathname, { replace: true, keepStatus: true });
    },
    (v) => requireFields(v, { address_line1: "street address", city: "city", state: "state", zip: "ZIP code", effective_date: "effective date" }),
  );
  const current = details && details.mailing_address;
  return [
    head,
    card("Mailing address on file", h("p", {}, current ? current.text || [current.line1, current.line2, current.city_state_zip].filter(Boolean).join(", ") : "Unavailable right now.")),
    pending
      ? card(
          "Request waiting for review",
          dl([["New address", addressText(pending.new_address)], ["Effective", date(pending.effective_date)], ["Requested", date(pending.requested_at)]]),
          pending.requested_by_you
            ? h(
                "button",
                {
                  type: "button",
                  class: "btn",
                  on: {
                    click: async () => {
                      try {
                        await del(PATHS.cancelAddress(n, pending.request_id));
                        notice("Your request was cancelled.", "success");
                        app.navigate(location.pathname, { replace: true, keepStatus: true });
                      } catch (err) {
                        notice(err.message, "error");
                      }
                    },
                  },
                },
                "Cancel this request",
              )
            : null,
        )
      : card("New mailing address", h("p", { class: "hint" }, "Where should bills and notices go? Customer Service reviews every request."), form),
    requestsError,
    requests.length
      ? card(
          "Earlier requests",
          table({
            caption: "Address change requests",
            captionHidden: true,
            columns: [
              { label: "Requested", cell: (r) => date(r.requested_at) },
              { label: "New address", cell: (r) => addressText(r.new_address) },
              { label: "Effective", cell: (r) => date(r.effective_date) },
              { label: "Status", cell: (r) => [r.status, r.reason ? ` (${r.reason})` : ""] },
            ],
            rows: requests,
          }),
        )
      : null,
  ];
}

function addressText(a) {
  if (!a) return "";
  if (typeof a === "string") return a;
  return a.text || [a.line1 || a.address_line1, a.line2 || a.address_line2, [a.city, a.state].filter(Boolean).join(", "), a.zip].filter(Boolean).join(", ");
}

// ---- preferences --------------------------------------------------------------

async function preferencesPage({ params }) {
  const n = params.account;
  let head;
  let prefs;
  try {
    [{ head }, prefs] = await Promise.all([accountHeading(n, "Paperless billing and email notices", `/accounts/${enc(n)}/preferences`), get(PATHS.preferences(n))]);
  } catch (err) {
    return notFound("Paperless billing and email notices", err, `Account ${n}`);
  }
  const form = h(
    "form",
    { class: "stack" },
    field({
      name: "paperless",
      label: "How would you like your bills?",
      type: "radio-group",
      value: prefs.paperless ? "true" : "false",
      options: [
        { value: "true", label: "Paperless: email me when a bill is ready, no paper bill" },
        { value: "false", label: "Printed: mail me a paper bill" },
      ],
    }),
    field({ name: "email_notices", label: "Email me notices about changes to this account (automatic payments, address changes)", type: "checkbox", checked: Boolean(prefs.email_notices) }),
    submitButton("Save preferences"),
  );
  onSubmit(form, async (v) => {
    await put(PATHS.preferences(n), { paperless: v.paperless === "true", email_notices: v.email_notices });
    notice("Your preferences were saved.", "success");
  });
  return [head, card("Your choices", prefs.chosen === false ? h("p", { class: "hint" }, "You have not chosen yet: you get printed bills.") : null, form)];
}

// ---- automatic payments -------------------------------------------------------

async function autopayPage({ params, query, app }) {
  const n = params.account;
  const base = `/accounts/${enc(n)}/autopay`;
  let head;
  try {
    ({ head } = await accountHeading(n, "Automatic payments", base));
  } catch (err) {
    return notFound("Automatic payments", err, `Account ${n}`);
  }
  const messages = [];
  // Back from the processor's "save a card" page.
  if (query.get("card_token") && query.get("status") === "succeeded") {
    try {
      await put(PATHS.autopay(n), { card_token: query.get("card_token") });
      messages.push(alertBox("Automatic payments are on. We will email you before each charge.", "success"));
    } catch (err) {
      messages.push(alertBox(err.message));
    }
    history.replaceState({}, "", base);
  } else if (query.get("status") && query.get("status") !== "succeeded") {
    messages.push(alertBox("No card was saved. Automatic payments are unchanged.", "info"));
    history.replaceState({}, "", base);
  }
  let plan;
  try {
    plan = await get(PATHS.autopay(n));
  } catch (err) {
    return [head, messages, loadError(err, "Automatic payments")];
  }
  const active = plan.status === "active";
  const setup = h(
    "button",
    {
      type: "button",
      class: "btn btn-primary",
      on: {
        click: async (event) => {
          event.target.disabled = true;
          try {
            const data = await post(PATHS.cardSetup(n), {});
            location.assign(data.setup_url);
          } catch (err) {
            event.target.disabled = false;
            notice(err.message, "error");
          }
        },
      },
    },
    active ? "Use a different card" : "Sign up for automatic payments",
  );
  const cancel = active
    ? h(
        "button",
        {
          type: "button",
          class: "btn danger",
          on: {
            click: async () => {
              if (!window.confirm("Stop automatic payments for this account?")) return;
              try {
                await del(PATHS.autopay(n));
                notice("Automatic payments are off.", "success");
                app.navigate(base, { replace: true, keepStatus: true });
              } catch (err) {
                notice(err.message, "error");
              }
            },
          },
        },
        "Stop automatic payments",
      )
    : null;
  const cardInfo = plan.card
    ? `${plan.card.brand || "Card"} ending ${plan.card.last4}, expires ${plan.card.expires}${plan.card.expired ? " (expired)" : plan.card.expiring_soon ? " (expiring soon)" : ""}`
    : null;
  return [
    head,
    messages,
    card(
      active ? "Automatic payments are on" : "Automatic payments are off",
      active
        ? dl([["Card", cardInfo], ["Receipts and notices to", plan.email], ["Charged", `${plan.days_before} days before the due date`], ["Since", date(plan.enrolled_at)]])
        : h("p", {}, "Each new bill is paid from your card a few days before it is due. We email you before every charge; you can stop at any time."),
      plan.last_failure ? alertBox(`The charge for bill ${plan.last_failure.bill_number} failed: ${plan.last_failure.reason}.`) : null,
      h("div", { class: "actions" }, setup, cancel),
      h("p", { class: "hint" }, "You enter your card on our payment processor’s secure page; the city never sees its number."),
    ),
    (plan.charges || []).length
      ? card(
          "Scheduled and past charges",
          table({
            caption: "Automatic charges",
            captionHidden: true,
            columns: [
              { label: "Bill", cell: (c) => h("a", { href: `/bills/${enc(c.bill_number)}` }, c.bill_number) },
              { label: "Due", cell: (c) => date(c.due_date) },
              { label: "Charge date", cell: (c) => date(c.charge_date) },
              { label: "Amount", num: true, cell: (c) => money(c.amount) },
              { label: "Status", cell: (c) => [c.status, c.reason ? ` (${c.reason})` : ""] },
            ],
            rows: plan.charges,
          }),
        )
      : null,
  ];
}

export const routes = [
  { path: "/utility", page: searchPage, title: "Utility billing" },
  { path: "/accounts/:account", page: manageBillsPage, auth: true, title: "Manage bills" },
  { path: "/accounts/:account/bills", page: allBillsPage, auth: true, title: "All bills" },
  { path: "/accounts/:account/summary", page: summaryPage, auth: true, title: "Account summary" },
  { path: "/accounts/:account/consumption", page: consumptionPage, auth: true, title: "Consumption history" },
  { path: "/accounts/:account/address", page: addressPage, auth: true, title: "Request a change of address" },
  { path: "/accounts/:account/preferences", page: preferencesPage, auth: true, title: "Paperless billing and email notices" },
  { path: "/accounts/:account/autopay", page: autopayPage, auth: true, title: "Automatic payments" },
  { path: "/bills/:bill", page: billPage, title: "Bill details" },
];
