// Paying: My Cart, Pay Bills, billing information, the 10-minute hand-off, the receipt, quick pay.

import { get, post, del, newIdempotencyKey, setCsrfToken, ApiError } from "../api.js";
import { h, card, dl, date, money, field, onSubmit, submitButton, requireFields, notice, loadError, alertBox, table, clear, showErrors, clearErrors } from "../ui.js";
import { billFigure, pageHeader, billsToCart, utilityBillColumns, totalRow } from "../components.js";
import { items } from "./home.js";

const enc = encodeURIComponent;
const PATHS = {
  cart: "/cart",
  item: (b) => `/cart/items/${enc(b)}`,
  items: "/cart/items",
  checkouts: "/checkouts",
  checkout: (id) => `/checkouts/${enc(id)}`,
  cancel: (id) => `/checkouts/${enc(id)}/cancel`,
  quickPay: "/quick-pay/lookups",
};
const CHECKOUT_KEY = "muniportal.checkout-key";
const FINAL = new Set(["paid", "failed", "expired", "canceled"]);

function emptyCart() {
  return [pageHeader("My Cart"), h("p", { class: "empty" }, "Your cart is empty."), h("p", {}, h("a", { href: "/utility" }, "Find a utility bill"), " · ", h("a", { href: "/general" }, "Find a general bill"), " · ", h("a", { href: "/quick-pay" }, "Quick pay"))];
}

function itemLabel(i) {
  return `${i.bill_type === "UTILITY" || i.account_number ? "Utilities" : i.bill_type || i.description || "Bill"}: ${i.bill_number}`;
}

function cartTotals(cart, span) {
  return [
    Number(cart.convenience_fee) ? totalRow(span, "Subtotal", money(cart.subtotal)) : null,
    Number(cart.convenience_fee) ? totalRow(span, "Convenience fee", money(cart.convenience_fee)) : null,
    totalRow(span, "Total", money(cart.total || cart.subtotal)),
  ];
}

async function cartPage({ app }) {
  let cart;
  try {
    cart = await get(PATHS.cart);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return emptyCart();
    return [pageHeader("My Cart"), loadError(err, "Your cart")];
  }
  app.setCart(cart);
  const list = items(cart, "items");
  if (!list.length) return emptyCart();
  const rerender = () => app.navigate("/cart", { replace: true, keepStatus: true });
  return [
    pageHeader("My Cart", `${list.length} item${list.length === 1 ? "" : "s"} in your cart.`),
    h(
      "div",
      { class: "card" },
      table({
        caption: "Items in your cart",
        captionHidden: true,
        columns: [
          { label: "Item", cell: (i) => [h("a", { href: `/bills/${enc(i.bill_number)}` }, itemLabel(i)), i.problem ? h("p", { class: "field-error" }, i.problem) : null] },
          { label: "Due date", cell: (i) => date(i.due_date) },
          { label: "Amount", num: true, cell: (i) => money(i.amount) },
          {
            label: "Remove",
            cell: (i) =>
              h(
                "button",
                {
                  type: "button",
                  class: "linklike danger",
                  on: {
                    click: async () => {
                      try {
                        app.setCart(await del(PATHS.item(i.bill_number)));
                        notice(`Bill ${i.bill_number} was removed from your cart.`, "success");
                        rerender();
                      } catch (err) {
                        notice(err.message, "error");
                      }
                    },
                  },
                },
                "Remove",
                h("span", { class: "visually-hidden" }, ` bill ${i.bill_number}`),
              ),
          },
        ],
        rows: list,
        footer: cartTotals(cart, 2),
      }),
      h("div", { class: "actions" }, h("a", { class: "btn btn-primary", href: "/cart/pay" }, "Checkout"), h("a", { class: "btn", href: "/" }, "Continue shopping")),
    ),
  ];
}

async function payBillsPage({ app }) {
  let cart;
  try {
    cart = await get(PATHS.cart);
  } catch (err) {
    return [pageHeader("Pay bills"), loadError(err, "Your cart")];
  }
  app.setCart(cart);
  const list = items(cart, "items");
  if (!list.length) return emptyCart();
  const subtotal = h("output", { id: "subtotal", class: "strong", for: list.map((i) => `amount-${i.bill_number}`).join(" ") }, money(cart.subtotal));
  const form = h(
    "form",
    { class: "pay-bills" },
    table({
      caption: "Bills to pay",
      columns: [
        { label: "Bill description", cell: (i) => i.description || itemLabel(i) },
        { label: "Bill number", key: "bill_number" },
        { label: "Due date", cell: (i) => date(i.due_date) },
        { label: "Balance", num: true, cell: (i) => money(i.balance_due) },
        {
          label: "Payment amount",
          rowHeader: false,
          cell: (i) =>
            h(
              "div",
              { class: "field amount-field", "data-field": `items.${i.bill_number}.amount` },
              h("label", { for: `amount-${i.bill_number}`, class: "visually-hidden" }, `Payment amount for bill ${i.bill_number}`),
              h("p", { class: "field-error", id: `amount-${i.bill_number}-error`, hidden: true }),
              h("span", { class: "currency" }, "$", h("input", { id: `amount-${i.bill_number}`, name: `amount-${i.bill_number}`, inputmode: "decimal", value: Number(i.amount).toFixed(2), class: "w-amount", autocomplete: "off" })),
            ),
        },
      ],
      rows: list,
    }),
    h("div", { class: "subtotal-row" }, h("button", { type: "submit", class: "btn", value: "calculate", name: "action" }, "Calculate subtotal"), h("span", {}, "Subtotal: ", subtotal)),
    Number(cart.convenience_fee) ? h("p", { class: "hint" }, `A convenience fee (${cart.convenience_fee_rule || money(cart.convenience_fee)}) is added at checkout.`) : null,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "btn btn-primary", value: "continue", name: "action" }, "Continue"), h("a", { class: "btn", href: "/cart" }, "Cancel")),
  );

  // Saves every changed amount; errors land on the amount's own field.
  async function saveAmounts() {
    const errors = {};
    let latest = null;
    for (const i of list) {
      const input = form.querySelector(`#amount-${CSS.escape(i.bill_number)}`);
      const typed = input.value.trim().replace(/^\$/, "").replace(/,/g, "");
      if (!/^\d+(\.\d{1,2})?$/.test(typed)) {
        errors[`items.${i.bill_number}.amount`] = "Enter an amount in dollars and cents, like 127.11.";
        continue;
      }
      if (Number(typed).toFixed(2) === Number(i.amount).toFixed(2)) continue;
      try {
        latest = await post(PATHS.items, { bill_number: i.bill_number, amount: Number(typed).toFixed(2) });
        i.amount = Number(typed).toFixed(2);
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        errors[`items.${i.bill_number}.amount`] = err.errors.amount || Object.values(err.errors)[0] || err.message;
      }
    }
    if (latest) {
      app.setCart(latest);
      subtotal.textContent = money(latest.subtotal);
    } else {
      subtotal.textContent = money(list.reduce((sum, i) => sum + Number(i.amount), 0));
    }
    if (Object.keys(errors).length) {
      showErrors(form, errors);
      return false;
    }
    return true;
  }
  form.setAttribute("novalidate", "");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const action = event.submitter ? event.submitter.value : "continue";
    const ok = await saveAmounts();
    if (!ok) return;
    if (action === "calculate") notice(`Subtotal: ${subtotal.textContent}`, "info");
    else app.navigate("/checkout");
  });
  return [pageHeader("Pay bills", "Review the amounts. You may pay part of a bill; change the amount, then choose “Calculate subtotal”.", [["/cart", "My Cart"], [null, "Pay bills"]]), h("div", { class: "card" }, form)];
}

async function billingPage({ app }) {
  let cart;
  try {
    cart = await get(PATHS.cart);
  } catch (err) {
    return [pageHeader("Billing information"), loadError(err, "Your cart")];
  }
  const list = items(cart, "items");
  if (!list.length) return emptyCart();
  // One key per visit of this page: a double click or a retry opens the same checkout.
  const key = newIdempotencyKey();
  sessionStorage.setItem(CHECKOUT_KEY, key);
  const me = app.me || {};
  const form = h(
    "form",
    { class: "stack" },
    h("p", { class: "hint" }, "Must match the billing address of your card."),
    field({ name: "name", label: "Name on card", autocomplete: "name", required: true }),
    field({ name: "address", label: "Address", autocomplete: "address-line1", required: true }),
    field({ name: "address2", label: "Address line 2 (optional)", autocomplete: "address-line2" }),
    h(
      "div",
      { class: "row-fields" },
      field({ name: "city", label: "City", autocomplete: "address-level2", required: true }),
      field({ name: "state", label: "State", autocomplete: "address-level1", required: true, maxlength: 2, width: "short", hint: "2 letters" }),
      field({ name: "zip", label: "ZIP code", autocomplete: "postal-code", inputmode: "numeric", required: true, width: "short" }),
    ),
    field({ name: "phone", label: "Phone (optional)", type: "tel", autocomplete: "tel" }),
    field({ name: "email", label: "Email for the receipt", type: "email", autocomplete: "email", required: true, value: me.email || "" }),
    h("div", { class: "actions" }, submitButton(`Continue to payment: ${money(cart.total || cart.subtotal)}`), h("a", { class: "btn", href: "/cart" }, "Cancel")),
  );
  onSubmit(
    form,
    async (v) => {
      const billing = { ...v };
      if (!billing.address2) delete billing.address2;
      if (!billing.phone) delete billing.phone;
      const checkout = await post(PATHS.checkouts, { billing }, { "Idempotency-Key": key });
      sessionStorage.setItem(`muniportal.checkout.${checkout.checkout_id}`, JSON.stringify(checkout));
      app.navigate(`/checkout/${enc(checkout.checkout_id)}`, { replace: true });
    },
    (v) => requireFields(v, { name: "name", address: "address", city: "city", state: "state", zip: "ZIP code", email: "email address" }),
  );
  return [
    pageHeader("Billing information", null, [["/cart", "My Cart"], ["/cart/pay", "Pay bills"], [null, "Billing information"]]),
    h(
      "div",
      { class: "grid" },
      card("Your details", form),
      card(
        "You are paying",
        table({ caption: "Bills in this payment", captionHidden: true, columns: [{ label: "Item", cell: itemLabel }, { label: "Amount", num: true, cell: (i) => money(i.amount) }], rows: list, footer: cartTotals(cart, 1) }),
        h("p", { class: "hint" }, "Next you have 10 minutes to enter your card on the secure payment page."),
      ),
    ),
  ];
}

function formatLeft(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const m = Math.floor(s / 60);
  const r = s % 60;
  return `${m} minute${m === 1 ? "" : "s"}, ${r} second${r === 1 ? "" : "s"}`;
}

/** The countdown: a visible timer, and a spoken warning at 5, 2 and 1 minutes left. */
function countdown(expiresAt, onExpire) {
  const end = new Date(expiresAt).getTime();
  const out = h("span", { id: "time-left", class: "strong" });
  const box = h("p", { class: "timer", role: "timer", "aria-live": "off" }, "Time left: ", out);
  const warned = new Set();
  const tick = () => {
    if (!document.body.contains(box) && warned.has("started")) {
      clearInterval(timer);
      return;
    }
    warned.add("started");
    const left = (end - Date.now()) / 1000;
    out.textContent = formatLeft(left);
    for (const mark of [300, 120, 60]) {
      if (left <= mark && left > mark - 5 && !warned.has(mark)) {
        warned.add(mark);
        notice(`${mark / 60} minute${mark === 60 ? "" : "s"} left to complete your payment.`, "info");
      }
    }
    if (left <= 0) {
      clearInterval(timer);
      onExpire();
    }
  };
  const timer = setInterval(tick, 1000);
  tick();
  return box;
}

async function handoffPage({ params, app }) {
  const id = params.checkout;
  let checkout;
  try {
    checkout = await get(PATHS.checkout(id));
  } catch (err) {
    return [pageHeader("Payment"), loadError(err, "This payment")];
  }
  if (FINAL.has(checkout.status) || checkout.status === "pending") {
    app.navigate(`/checkout/return?checkout_id=${enc(id)}`, { replace: true });
    return undefined;
  }
  const stored = JSON.parse(sessionStorage.getItem(`muniportal.checkout.${id}`) || "{}");
  const url = checkout.payment_url || stored.payment_url;
  const cancel = h(
    "button",
    {
      type: "button",
      class: "btn",
      on: {
        click: async (event) => {
          event.target.disabled = true;
          try {
            await post(PATHS.cancel(id));
          } catch (err) {
            notice(err.message, "error");
          }
          app.navigate(`/checkout/return?checkout_id=${enc(id)}`, { replace: true });
        },
      },
    },
    "Cancel payment",
  );
  const onExpire = () => app.navigate(`/checkout/return?checkout_id=${enc(id)}&status=expired`, { replace: true });
  return [
    pageHeader("Complete your payment", "Your bills are held for you while you pay.", [["/cart", "My Cart"], [null, "Payment"]]),
    h(
      "div",
      { class: "card handoff" },
      h("p", { class: "big" }, money(checkout.amount_total)),
      countdown(checkout.expires_at, onExpire),
      h("p", {}, "You have 10 minutes to enter your card on the secure payment page of our card processor. The city never sees your card number."),
      h("div", { class: "actions" }, url ? h("a", { class: "btn btn-primary", href: url, "data-external": "", id: "pay-at-processor" }, "Continue to the secure payment page") : alertBox("The payment page is not available."), cancel),
    ),
    card("In this payment", table({ caption: "Bills in this payment", captionHidden: true, columns: [{ label: "Item", cell: itemLabel }, { label: "Amount", num: true, cell: (i) => money(i.amount) }], rows: checkout.items || [] })),
  ];
}

function brand(name) {
  if (!name) return "Card";
  return name.length <= 4 ? name.toUpperCase() : name.charAt(0).toUpperCase() + name.slice(1);
}

function receipt(c) {
  const r = c.receipt || {};
  return [
    alertBox(c.message || "Thank you! Your payment was received.", "success"),
    card(
      "Receipt",
      dl([
        ["Confirmation number", h("strong", { id: "confirmation-number" }, r.confirmation_number || "")],
        ["Paid", date(r.paid_at)],
        ["Card", r.card_last4 ? `${brand(r.card_brand)} ending ${r.card_last4}` : ""],
        ["Convenience fee", Number(r.convenience_fee) ? money(r.convenience_fee) : null],
        ["Total paid", money(r.amount_total || c.amount_total)],
        ["Receipt emailed to", r.email || c.email],
      ]),
      table({
        caption: "Bills paid",
        columns: [{ label: "Bill", cell: (i) => h("a", { href: `/bills/${enc(i.bill_number)}` }, itemLabel(i)) }, { label: "Amount", num: true, cell: (i) => money(i.amount) }],
        rows: r.items || c.items || [],
      }),
      h("p", { class: "actions no-print" }, h("button", { type: "button", class: "btn", on: { click: () => window.print() } }, "Print receipt")),
    ),
  ];
}

async function returnPage({ query, app }) {
  const id = query.get("checkout_id");
  const head = pageHeader("Payment result");
  if (!id) return [head, alertBox("We could not tell which payment this is."), h("p", {}, h("a", { href: "/cart" }, "Back to My Cart"))];
  if (query.get("status") === "canceled") {
    try {
      await post(PATHS.cancel(id));
    } catch (err) {
      console.warn("cancel", err);
    }
  }
  const body = h("div", { id: "result" }, h("p", { class: "loading", role: "status" }, "Checking your payment with the processor…"));
  const wrap = [head, body];
  const poll = async () => {
    let c;
    for (let attempt = 0; attempt < 90; attempt += 1) {
      try {
        c = await get(PATHS.checkout(id));
      } catch (err) {
        clear(body, loadError(err, "This payment"));
        return;
      }
      if (FINAL.has(c.status)) break;
      await new Promise((r) => setTimeout(r, attempt < 10 ? 500 : 1500));
      if (!document.body.contains(body)) return;
    }
    sessionStorage.removeItem(`muniportal.checkout.${id}`);
    await app.refreshCart();
    if (c.status === "paid") {
      clear(body, receipt(c));
    } else if (c.status === "failed") {
      clear(body, alertBox(c.message || `Your card was declined${c.failure_reason ? ` (${c.failure_reason})` : ""}. Nothing was charged.`), h("p", {}, "The bills are still in your cart. ", h("a", { class: "btn btn-primary", href: "/cart/pay" }, "Try again")));
    } else if (c.status === "expired") {
      clear(body, alertBox(c.message || "The 10 minutes to pay ran out, and nothing was charged."), h("p", {}, "The bills are still in your cart. ", h("a", { class: "btn btn-primary", href: "/cart/pay" }, "Start again")));
    } else if (c.status === "canceled") {
      clear(body, alertBox(c.message || "The payment was cancelled. Nothing was charged.", "info"), h("p", {}, h("a", { href: "/cart" }, "Back to My Cart")));
    } else {
      clear(body, alertBox(c.message || "Your payment is still being processed. We will email you the receipt.", "info"));
    }
    const heading = body.querySelector("h2") || document.querySelector("#page h1");
    if (heading) {
      heading.setAttribute("tabindex", "-1");
      heading.focus();
    }
  };
  setTimeout(poll, 0);
  return wrap;
}

async function quickPayPage({ app }) {
  const results = h("div", { id: "quick-pay-results" });
  const form = h(
    "form",
    { class: "stack" },
    field({ name: "account_number", label: "Account number", inputmode: "numeric", autocomplete: "off", required: true, hint: "The first number in “Account Number - Customer Number”." }),
    field({ name: "customer_id", label: "Customer number", inputmode: "numeric", autocomplete: "off", required: true, hint: "The second number, also called customer ID." }),
    submitButton("Find my bills"),
  );
  onSubmit(
    form,
    async (v) => {
      const data = await post(PATHS.quickPay, v);
      // A guest gets a session of its own (cookie) and the CSRF token that goes with it.
      if (data.csrf_token) setCsrfToken(data.csrf_token);
      const account = data.account_number || v.account_number;
      const bills = items(data, "bills");
      clear(
        results,
        h(
          "section",
          { class: "card", "aria-labelledby": "qp-h" },
          h("h2", { id: "qp-h", tabindex: "-1" }, `Account ${account}`),
          data.service_address ? h("p", {}, data.service_address) : null,
          billsToCart({
            caption: "Outstanding bills",
            bills,
            columns: utilityBillColumns.map((c, i) => (i === 0 ? { label: "Bill", cell: (b) => b.bill_number } : c)),
            totals: totalRow(utilityBillColumns.length, "Total due", money(data.total_due)),
            app,
            emptyText: "Nothing is due on this account. Thank you!",
          }),
        ),
      );
      document.getElementById("qp-h").focus();
    },
    (v) => requireFields(v, { account_number: "account number", customer_id: "customer number" }),
    { pair: ["account_number", "customer_id"] },
  );
  return [
    pageHeader("Quick pay", "Pay a utility bill without registering. You need the account number and the customer number from your bill."),
    h("div", { class: "with-figure card" }, h("div", {}, form), billFigure()),
    results,
  ];
}

export const routes = [
  { path: "/cart", page: cartPage, title: "My Cart" },
  { path: "/cart/pay", page: payBillsPage, title: "Pay bills" },
  { path: "/cart/review", page: cartPage, title: "My Cart" },
  { path: "/checkout", page: billingPage, title: "Billing information" },
  { path: "/checkout/return", page: returnPage, title: "Payment result" },
  { path: "/checkout/:checkout", page: handoffPage, title: "Complete your payment" },
  { path: "/quick-pay", page: quickPayPage, title: "Quick pay" },
];

