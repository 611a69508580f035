// The home page: announcements, profile information and linked accounts.

import { get } from "../api.js";
import { h, card, dl, date, loadError, alertBox, table, money } from "../ui.js";

export function items(data, key) {
  if (Array.isArray(data)) return data;
  return (data && data[key]) || [];
}

function paragraphs(text) {
  return String(text || "")
    .split(/\n{2,}/)
    .map((block) => h("p", {}, linkify(block)));
}

// Announcement bodies are plain text; URLs become links, everything else stays text.
function linkify(text) {
  const parts = [];
  const re = /(https?:\/\/[^\s<>"]+)/g;
  let last = 0;
  let m;
  while ((m = re.exec(text))) {
    parts.push(text.slice(last, m.index));
    parts.push(h("a", { href: m[1], rel: "noopener", "data-external": "" }, m[1]));
    last = m.index + m[1].length;
  }
  parts.push(text.slice(last));
  return parts;
}

export async function announcementsCard() {
  try {
    const list = items(await get("/announcements"), "announcements");
    return card(
      "Announcements",
      list.length
        ? h(
            "ul",
            { class: "announcements" },
            list.map((a) => h("li", {}, h("h3", {}, a.title), paragraphs(a.body))),
          )
        : h("p", { class: "empty" }, "There are currently no announcements."),
    );
  } catch (err) {
    return card("Announcements", loadError(err, "Announcements"));
  }
}

export function linkRow(link) {
  if (link.type === "customer") {
    return h(
      "li",
      { class: "link-item" },
      h("span", { class: "tag" }, "Customer"),
      h("span", {}, h("strong", {}, link.name || link.customer_name || `Customer ${link.customer_id}`), ` · Customer ID ${link.customer_id}`, link.location ? ` · ${link.location}` : ""),
      h("a", { href: `/customers/${encodeURIComponent(link.customer_id)}` }, "Manage bills", h("span", { class: "visually-hidden" }, ` for customer ${link.customer_id}`)),
    );
  }
  return h(
    "li",
    { class: "link-item" },
    h("span", { class: "tag" }, "Utility"),
    h("span", {}, h("strong", {}, `Account ${link.account_number}`), link.service_address || link.location ? ` · ${link.service_address || link.location}` : "", link.name ? ` · ${link.name}` : ""),
    h("a", { href: `/accounts/${encodeURIComponent(link.account_number)}` }, "Manage bills", h("span", { class: "visually-hidden" }, ` for account ${link.account_number}`)),
  );
}

async function linkedCard() {
  try {
    const links = items(await get("/me/links"), "links");
    return card(
      "Your accounts",
      links.length
        ? h("ul", { class: "links" }, links.map(linkRow))
        : h("p", { class: "empty" }, "You have no linked accounts yet."),
      h("p", {}, h("a", { href: "/settings/links/new" }, "Link an account")),
    );
  } catch (err) {
    return card("Your accounts", loadError(err, "Your linked accounts"));
  }
}

function profileCard(me) {
  return card(
    "Profile information",
    dl([
      ["User ID", me.display_user_id || me.user_id],
      ["Email address", me.email],
      ["Last successful sign-in", me.last_successful_login ? date(me.last_successful_login) : "This is your first sign-in"],
    ]),
    h("p", {}, h("a", { href: "/settings" }, "Account settings")),
  );
}

async function homePage({ app }) {
  const announcements = announcementsCard();
  if (!app.me) {
    return [
      h(
        "section",
        { class: "hero", "aria-labelledby": "hero-h" },
        h("h1", { id: "hero-h" }, "Welcome to Citizen Self Service"),
        h("p", { class: "lead" }, "See your utility and city bills, check your water use and pay online, any time."),
        h(
          "ul",
          { class: "hero-actions" },
          h("li", {}, h("a", { class: "btn btn-primary", href: "/sign-in" }, "Sign in")),
          h("li", {}, h("a", { class: "btn btn-secondary", href: "/register" }, "Register")),
          h("li", {}, h("a", { class: "btn btn-secondary", href: "/quick-pay" }, "Pay without registering")),
        ),
      ),
      h("div", { class: "grid" }, await announcements, card("Utility billing", h("p", {}, "Water, sewer and irrigation bills for your service address."), h("p", {}, h("a", { href: "/utility" }, "Find your utility account"))), card("General billing", h("p", {}, "Invoices for permits, claims, carts and other city services."), h("p", {}, h("a", { href: "/general" }, "Find an invoice")))),
    ];
  }
  const [ann, linked] = await Promise.all([announcements, linkedCard()]);
  return [
    h("h1", {}, `Welcome, ${app.me.display_user_id || app.me.user_id}`),
    app.me.email_verified === false ? alertBox("Your email address is not verified yet.", "info") : null,
    h("div", { class: "grid" }, ann, h("div", { class: "stack-cards" }, profileCard(app.me), linked)),
  ];
}

async function paymentsPage() {
  let list;
  try {
    list = items(await get("/me/payments"), "payments");
  } catch (err) {
    return [h("h1", {}, "Payment history"), loadError(err, "Your payment history")];
  }
  return [
    h("h1", {}, "Payment history"),
    list.length
      ? table({
          caption: "Your payments, newest first",
          columns: [
            { label: "Confirmation", key: "confirmation_number" },
            { label: "Paid", cell: (p) => date(p.paid_at) },
            { label: "Bills", cell: (p) => (p.items || []).map((i) => i.bill_number).join(", ") },
            { label: "Card", cell: (p) => (p.card_last4 ? `${p.card_brand || "Card"} ending ${p.card_last4}` : "") },
            { label: "Status", cell: (p) => p.status },
            { label: "Amount", num: true, cell: (p) => money(p.amount) },
          ],
          rows: list,
        })
      : h("p", { class: "empty" }, "You have not paid online yet."),
  ];
}

export const routes = [
  { path: "/", page: homePage, title: "Home" },
  { path: "/payments", page: paymentsPage, auth: true, title: "Payment history" },
];
