// Pieces several pages share: the example bill, page headers, the bills table with checkboxes.

import { post } from "./api.js";
import { h, money, date, table, notice, nextId, alertBox } from "./ui.js";

/** The example bill that marks the account number and the customer number. */
export function billFigure(kind = "utility") {
  const text =
    kind === "general"
      ? "Your customer ID and bill (invoice) number are printed at the top of every bill. The customer number on a utility bill is the same customer ID."
      : "On a utility bill, the box “Account Number - Customer Number” holds both: the account number comes first (28624 here), the customer number second (405583). They are easy to swap: check the order.";
  return h(
    "figure",
    { class: "bill-figure" },
    h("img", {
      src: "/static/img/example-bill.svg",
      width: "480",
      height: "330",
      alt: "Example utility bill. In the box labelled Account Number - Customer Number, 28624 - 405583, the first number (28624) is the account number and the second (405583) is the customer number.",
    }),
    h("figcaption", {}, text),
  );
}

export function pageHeader(title, lead = null, crumbs = null) {
  return [
    crumbs
      ? h(
          "nav",
          { class: "breadcrumbs", "aria-label": "Breadcrumb" },
          h(
            "ol",
            {},
            crumbs.map(([href, label]) => h("li", {}, href ? h("a", { href }, label) : h("span", { "aria-current": "page" }, label))),
          ),
        )
      : null,
    h("h1", {}, title),
    lead ? h("p", { class: "lead" }, lead) : null,
  ];
}

/** Sub-navigation of one utility account (the sidebar links of the old portal). */
export function accountTabs(accountNumber, current) {
  const base = `/accounts/${encodeURIComponent(accountNumber)}`;
  const tabs = [
    [base, "Manage bills"],
    [`${base}/summary`, "Account summary"],
    [`${base}/consumption`, "Consumption history"],
    [`${base}/autopay`, "Automatic payments"],
    [`${base}/preferences`, "Paperless and notices"],
    [`${base}/address`, "Change of address"],
  ];
  return h(
    "nav",
    { class: "tabs", "aria-label": `Account ${accountNumber}` },
    h(
      "ul",
      {},
      tabs.map(([href, label]) => h("li", {}, h("a", { href, "aria-current": href === current ? "page" : null }, label))),
    ),
  );
}

/**
 * A bills table with a checkbox per payable bill and an "Add to Cart" button.
 * `columns` describe the bill; `onAdded(cart)` runs after the cart changed.
 */
export function billsToCart({ caption, bills, columns, totals, app, emptyText }) {
  if (!bills.length) return h("p", { class: "empty" }, emptyText || "There are no outstanding bills.");
  const formId = nextId("bills");
  const checks = new Map();
  const pickColumn = {
    label: "Pay",
    rowHeader: false,
    cell: (b) => {
      const payable = Number(b.balance_due) > 0;
      const id = `${formId}-${b.bill_number}`;
      const box = h("input", {
        type: "checkbox",
        id,
        name: "bill",
        value: b.bill_number,
        disabled: !payable || undefined,
        checked: payable || undefined,
      });
      checks.set(b.bill_number, box);
      return h("span", { class: "pick" }, box, h("label", { for: id, class: "visually-hidden" }, `Pay bill ${b.bill_number}`));
    },
  };
  const result = h("div", { class: "form-result" });
  const form = h(
    "form",
    { id: formId, class: "bills-form" },
    table({ caption, columns: [pickColumn, ...columns], rows: bills, footer: totals }),
    result,
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit", class: "btn btn-primary" }, "Add to Cart"),
      h("p", { class: "hint" }, "Select the bills you would like to pay now, then choose “Add to Cart”."),
    ),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = [...checks.values()].filter((c) => c.checked && !c.disabled).map((c) => c.value);
    result.replaceChildren();
    if (!chosen.length) {
      result.append(alertBox("Select at least one bill to add to your cart."));
      return;
    }
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    const problems = [];
    let cart = null;
    for (const billNumber of chosen) {
      try {
        cart = await post("/cart/items", { bill_number: billNumber });
      } catch (err) {
        const why = Object.values(err.errors || {})[0] || err.message;
        problems.push(`Bill ${billNumber}: ${why}`);
      }
    }
    submit.disabled = false;
    if (cart) app.setCart(cart);
    else await app.refreshCart();
    const added = chosen.length - problems.length;
    if (added) {
      notice(
        `${added === 1 ? "1 bill was" : `${added} bills were`} added to your cart. To pay, open My Cart and choose Checkout.`,
        "success",
      );
      result.append(
        h(
          "div",
          { class: "notice notice-success" },
          h("p", {}, `Added to your cart: ${added} bill${added === 1 ? "" : "s"}. `, h("a", { href: "/cart" }, "Go to My Cart and check out")),
        ),
      );
    }
    if (problems.length) result.append(alertBox(problems.join(" ")));
  });
  return form;
}

export const utilityBillColumns = [
  { label: "Bill", cell: (b) => h("a", { href: `/bills/${encodeURIComponent(b.bill_number)}` }, b.bill_number, h("span", { class: "visually-hidden" }, " details")) },
  { label: "Bill date", cell: (b) => date(b.bill_date) },
  { label: "Pay by", cell: (b) => date(b.due_date) },
  { label: "Charges", num: true, cell: (b) => money(b.charges) },
  {
    label: "Balance due",
    num: true,
    cell: (b) => [money(b.balance_due), b.pending_web_payment ? h("span", { class: "badge" }, "Web payment pending") : null],
  },
];

export function totalRow(span, label, value) {
  return h("tr", {}, h("th", { scope: "row", colspan: String(span), class: "num" }, label), h("td", { class: "num strong" }, value));
}
