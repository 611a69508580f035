// General (non-utility) billing: search by customer ID + bill number, Manage Bills, Customer Information.

import { get, post } from "../api.js";
import { h, card, dl, date, money, field, onSubmit, submitButton, requireFields, loadError, table } from "../ui.js";
import { billFigure, pageHeader, billsToCart, totalRow } from "../components.js";
import { items } from "./home.js";

const enc = encodeURIComponent;
const PATHS = {
  remembered: "/me/remembered-values/general",
  search: "/general/searches",
  customer: (c) => `/customers/${enc(c)}`,
  invoices: (c) => `/customers/${enc(c)}/invoices`,
};

function tabs(c, current) {
  const base = `/customers/${enc(c)}`;
  return h(
    "nav",
    { class: "tabs", "aria-label": `Customer ${c}` },
    h(
      "ul",
      {},
      [
        [base, "Manage bills"],
        [`${base}/info`, "Customer information"],
      ].map(([href, label]) => h("li", {}, h("a", { href, "aria-current": href === current ? "page" : null }, label))),
    ),
  );
}

async function searchPage({ app, query }) {
  if (!app.me) {
    return [
      pageHeader("General billing", "View and pay general (non-utility) bills: claims, permits, carts and other city services."),
      card("Sign in to find your invoices", h("p", {}, h("a", { class: "btn btn-primary", href: "/sign-in?next=/general" }, "Sign in"), " ", h("a", { class: "btn btn-secondary", href: "/register" }, "Register"))),
    ];
  }
  let remembered = null;
  try {
    remembered = ((await get(PATHS.remembered)) || {}).values;
  } catch {
    remembered = null;
  }
  let links = [];
  try {
    links = items(await get("/me/links"), "links").filter((l) => l.type === "customer");
  } catch {
    links = [];
  }
  const form = h(
    "form",
    { class: "stack" },
    field({ name: "customer_id", label: "Customer ID", inputmode: "numeric", autocomplete: "off", required: true, value: query.get("customer_id") || (remembered && remembered.customer_id) || "" }),
    field({ name: "bill_number", label: "Bill (invoice) number", inputmode: "numeric", autocomplete: "off", required: true, value: (remembered && remembered.bill_number) || "", hint: "From any one of your bills." }),
    field({ name: "remember", label: "Remember these values", type: "checkbox", checked: Boolean(remembered) }),
    h("div", { class: "actions" }, submitButton("Search"), h("button", { type: "reset", class: "btn" }, "Reset")),
  );
  onSubmit(
    form,
    async (v) => {
      const found = await post(PATHS.search, v);
      const customer = (found && (found.customer_id || (found.results && found.results[0] && found.results[0].customer_id))) || v.customer_id;
      app.navigate(`/customers/${enc(customer)}`);
    },
    (v) => requireFields(v, { customer_id: "customer ID", bill_number: "bill number" }),
  );
  return [
    pageHeader("General billing", "To find your account, enter your customer ID and the bill (invoice) number from one of your bills."),
    h("div", { class: "with-figure card" }, h("div", {}, form), billFigure("general")),
    card(
      "Your linked customer accounts",
      links.length
        ? table({
            caption: "Linked customer accounts",
            captionHidden: true,
            columns: [
              { label: "Customer ID", key: "customer_id" },
              { label: "Customer name", cell: (l) => l.name || "" },
              { label: "Location", cell: (l) => l.location || "" },
              { label: "Manage", cell: (l) => h("a", { href: `/customers/${enc(l.customer_id)}` }, "Manage Bills", h("span", { class: "visually-hidden" }, ` for customer ${l.customer_id}`)) },
            ],
            rows: links,
          })
        : h("p", { class: "empty" }, "None yet. A search links the customer to your user ID."),
      h("p", {}, h("a", { href: "/settings/links/new?type=customer" }, "Link to account")),
    ),
  ];
}

async function manageBillsPage({ params, app }) {
  const c = params.customer;
  let info = null;
  let data;
  try {
    [info, data] = await Promise.all([get(PATHS.customer(c)).catch(() => null), get(PATHS.invoices(c))]);
  } catch (err) {
    return [pageHeader("Manage bills", null, [["/general", "General billing"], [null, `Customer ${c}`]]), loadError(err, `Customer ${c}`)];
  }
  const bills = items(data, "bills");
  const columns = [
    { label: "Bill number", cell: (b) => b.bill_number },
    { label: "Bill type", cell: (b) => b.bill_type || "" },
    { label: "Pay by", cell: (b) => date(b.pay_by || b.due_date) },
    { label: "Total unpaid", num: true, cell: (b) => money(b.total_unpaid) },
    { label: "Balance due", num: true, cell: (b) => [money(b.balance_due), b.pending_web_payment ? h("span", { class: "badge" }, "Web payment pending") : null] },
    { label: "Details", cell: (b) => h("a", { href: `/bills/${enc(b.bill_number)}` }, "Details", h("span", { class: "visually-hidden" }, ` of bill ${b.bill_number}`)) },
  ];
  const years = data.bill_years && data.bill_years.from ? ` (bill years ${data.bill_years.from} to ${data.bill_years.to} only)` : "";
  return [
    pageHeader("Manage bills", null, [["/general", "General billing"], [null, `Customer ${c}`]]),
    info ? h("p", { class: "account-line" }, h("span", {}, info.name), h("span", {}, [info.address, info.city_state_zip].filter(Boolean).join(", ")), h("span", {}, `Customer ${c}`)) : null,
    tabs(c, `/customers/${enc(c)}`),
    h(
      "section",
      { class: "card", "aria-labelledby": "inv-h" },
      h("div", { class: "row-between" }, h("h2", { id: "inv-h" }, `${bills.length} bill${bills.length === 1 ? "" : "s"} found${years}`), data.as_of ? h("p", { class: "muted" }, `As of ${date(data.as_of)}`) : null),
      billsToCart({
        caption: `Bills of customer ${c}`,
        bills,
        columns,
        totals: [totalRow(columns.length, "Total unpaid", money(data.total_unpaid)), totalRow(columns.length, "Total balance due", money(data.total_balance_due))],
        app,
        emptyText: "No bills found for this customer.",
      }),
      bills.some((b) => b.pending_web_payment) ? h("p", { class: "hint" }, "“Web payment pending”: a payment made online is being processed.") : null,
    ),
  ];
}

async function infoPage({ params }) {
  const c = params.customer;
  let info;
  try {
    info = await get(PATHS.customer(c));
  } catch (err) {
    return [pageHeader("Customer information", null, [["/general", "General billing"], [null, `Customer ${c}`]]), loadError(err, `Customer ${c}`)];
  }
  return [
    pageHeader("Customer information", null, [["/general", "General billing"], [`/customers/${enc(c)}`, `Customer ${c}`], [null, "Customer information"]]),
    tabs(c, `/customers/${enc(c)}/info`),
    card(
      "On file with the city",
      dl([
        ["Customer ID", info.customer_id],
        ["Name", info.name],
        ["Address", info.address],
        ["City State Zip", info.city_state_zip],
      ]),
      h("p", { class: "hint" }, "This comes from the city’s financial system. To change it, contact Customer Service."),
    ),
  ];
}

export const routes = [
  { path: "/general", page: searchPage, title: "General billing" },
  { path: "/customers/:customer", page: manageBillsPage, auth: true, title: "Manage bills" },
  { path: "/customers/:customer/info", page: infoPage, auth: true, title: "Customer information" },
];
