// billstream's hosted portal: tabs, the customer's locale, and every action through the JSON
// portal API with the session as Bearer. Plain script, no framework, no build step.
(function () {
  'use strict';

  var root = document.getElementById('portal');
  if (!root) return;
  var session = root.getAttribute('data-session');
  var locale = document.documentElement.lang || navigator.language || 'en';
  var auth = { Authorization: 'Bearer ' + session };

  // ---- Talking to the API ------------------------------------------------------------------

  // Resolves {ok, status, body}; a network failure resolves with status 0, so callers show a
  // message instead of failing silently.
  function api(method, path, body, headers) {
    var init = { method: method, headers: Object.assign({}, auth, headers || {}) };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (response) {
      return response.text().then(function (text) {
        var json = null;
        try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
        return { ok: response.ok, status: response.status, body: json };
      });
    }, function () {
      return { ok: false, status: 0, body: { error: 'Could not reach the server. Check your connection and try again.' } };
    });
  }

  function messageOf(answer) {
    return (answer.body && answer.body.error) || 'Something went wrong (' + answer.status + ').';
  }

  // A key for one purchase intent: random, from crypto.getRandomValues, which (unlike
  // crypto.randomUUID) also works on a page served over plain http.
  function newKey() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return 'portal-' + Array.prototype.map.call(bytes, function (b) {
      return ('0' + b.toString(16)).slice(-2);
    }).join('');
  }

  // ---- Locale ------------------------------------------------------------------------------

  // The server prints amounts and dates in a neutral form; here they become the reader's.
  function localize(scope) {
    scope.querySelectorAll('data.money').forEach(function (el) {
      try {
        var format = new Intl.NumberFormat(locale, { style: 'currency', currency: el.getAttribute('data-currency') });
        var digits = format.resolvedOptions().maximumFractionDigits;
        el.textContent = format.format(Number(el.value) / Math.pow(10, digits));
      } catch (e) { /* an unknown currency keeps the server's text */ }
    });
    scope.querySelectorAll('time[data-format]').forEach(function (el) {
      try {
        var at = new Date(el.getAttribute('datetime'));
        var options = el.getAttribute('data-format') === 'datetime'
          ? { dateStyle: 'medium', timeStyle: 'short' } : { dateStyle: 'medium' };
        el.textContent = new Intl.DateTimeFormat(locale, options).format(at);
      } catch (e) { /* keep the server's text */ }
    });
  }

  var announcer = document.getElementById('announce');
  function announce(text) {
    announcer.textContent = '';
    window.setTimeout(function () { announcer.textContent = text; }, 50);
  }

  // ---- Tabs (the ARIA tabs pattern, activation follows focus) --------------------------------

  var tabs = Array.prototype.slice.call(root.querySelectorAll('[role="tab"]'));
  function select(tab, focus) {
    tabs.forEach(function (other) {
      var on = other === tab;
      other.setAttribute('aria-selected', on ? 'true' : 'false');
      other.tabIndex = on ? 0 : -1;
      document.getElementById(other.getAttribute('aria-controls')).hidden = !on;
    });
    if (focus) tab.focus();
  }
  tabs.forEach(function (tab) {
    tab.addEventListener('click', function () { select(tab, false); });
    tab.addEventListener('keydown', function (event) {
      var at = tabs.indexOf(tab);
      var next = null;
      if (event.key === 'ArrowRight') next = tabs[(at + 1) % tabs.length];
      else if (event.key === 'ArrowLeft') next = tabs[(at - 1 + tabs.length) % tabs.length];
      else if (event.key === 'Home') next = tabs[0];
      else if (event.key === 'End') next = tabs[tabs.length - 1];
      if (next) {
        event.preventDefault();
        select(next, true);
      }
    });
  });

  // ---- Refreshing a tab --------------------------------------------------------------------

  // Purchases in flight and their keys, by top-up id: kept here, not in the form, so a tab
  // re-rendered mid-purchase still knows the click it is answering.
  var purchaseKeys = {};
  var purchasing = {};

  function refresh(name) {
    return fetch('/portal/tabs/' + name, { headers: auth }).then(function (response) {
      if (response.status === 401) {
        // The session ended: the page itself says so, with the way back.
        window.location.reload();
        return;
      }
      if (!response.ok) return;
      return response.text().then(function (html) {
        var body = root.querySelector('[data-tab-body="' + name + '"]');
        var focused = document.activeElement && body.contains(document.activeElement) ? document.activeElement.id : null;
        var values = {};
        body.querySelectorAll('input[id]').forEach(function (input) { values[input.id] = input.value; });
        body.innerHTML = html;
        Object.keys(values).forEach(function (id) {
          var input = document.getElementById(id);
          if (input) input.value = values[id];
        });
        body.querySelectorAll('form[data-top-up]').forEach(function (form) {
          if (purchasing[form.getAttribute('data-top-up')]) form.querySelector('button[type="submit"]').disabled = true;
        });
        if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
        localize(body);
      });
    }, function () { /* offline: the next change refreshes it */ });
  }

  function refreshAll() {
    return Promise.all(['methods', 'invoices', 'payments', 'credits'].map(refresh));
  }

  function showError(key, text) {
    var slot = root.querySelector('[data-error-for="' + CSS.escape(key) + '"]');
    if (slot) slot.textContent = text;
  }

  function clearErrors(scope) {
    scope.querySelectorAll('.error').forEach(function (slot) { slot.textContent = ''; });
  }

  // ---- Payment methods ---------------------------------------------------------------------

  var addError = document.getElementById('add-card-error');
  var cardForm = document.getElementById('card-form');
  var stripeForm = document.getElementById('stripe-form');
  var hostedLink = document.getElementById('hosted-link');
  var addButton = document.getElementById('add-card');
  var sandboxConfirmPath = null;
  var stripeSetup = null;

  function closeAddForms() {
    cardForm.hidden = true;
    stripeForm.hidden = true;
    hostedLink.hidden = true;
    addError.textContent = '';
    addButton.hidden = false;
  }

  function methodCount() {
    return root.querySelectorAll('[data-method]').length;
  }

  // For providers whose card arrives by webhook: ask again until the list grows.
  function waitForNewMethod(before) {
    var tries = 0;
    var timer = window.setInterval(function () {
      tries += 1;
      refresh('methods').then(function () {
        if (methodCount() > before) {
          window.clearInterval(timer);
          closeAddForms();
          announce('Payment method added.');
        } else if (tries >= 200) {
          window.clearInterval(timer);
        }
      });
    }, 3000);
  }

  function loadStripe() {
    if (window.Stripe) return Promise.resolve(window.Stripe);
    return new Promise(function (resolve, reject) {
      var script = document.createElement('script');
      script.src = 'https://js.stripe.com/v3/';
      script.onload = function () { resolve(window.Stripe); };
      script.onerror = function () { reject(new Error('Could not load Stripe.')); };
      document.head.appendChild(script);
    });
  }

  function startAddCard() {
    addError.textContent = '';
    addButton.disabled = true;
    api('POST', '/v1/customers/portal/create-setup-intent', {}).then(function (answer) {
      addButton.disabled = false;
      if (!answer.ok) {
        addError.textContent = messageOf(answer);
        return;
      }
      var intent = answer.body;
      if (intent.provider === 'sandbox' && intent.sandbox) {
        // The confirm URL starts with the service's public URL; this page is on the service.
        sandboxConfirmPath = new URL(intent.sandbox.confirmUrl, window.location.href).pathname;
        addButton.hidden = true;
        cardForm.hidden = false;
        document.getElementById('card-number').focus();
      } else if (intent.provider === 'stripe' && intent.stripe) {
        if (!intent.stripe.publishableKey) {
          addError.textContent = 'Cards cannot be added here yet: the merchant has not set up its Stripe publishable key.';
          return;
        }
        loadStripe().then(function (Stripe) {
          var stripe = Stripe(intent.stripe.publishableKey);
          var elements = stripe.elements({ clientSecret: intent.stripe.clientSecret });
          var element = elements.create('payment');
          document.getElementById('stripe-element').innerHTML = '';
          element.mount('#stripe-element');
          stripeSetup = { stripe: stripe, elements: elements };
          addButton.hidden = true;
          stripeForm.hidden = false;
        }, function (error) { addError.textContent = error.message; });
      } else if (intent.dodo && intent.dodo.paymentLink) {
        // A link the customer follows, rather than window.open after an await, which popup
        // blockers stop.
        var anchor = document.getElementById('hosted-link-anchor');
        anchor.href = intent.dodo.paymentLink;
        addButton.hidden = true;
        hostedLink.hidden = false;
        anchor.focus();
        waitForNewMethod(methodCount());
      } else {
        addError.textContent = 'This payment provider is not supported here.';
      }
    });
  }

  function whole(value) {
    var trimmed = String(value).trim();
    return /^\d+$/.test(trimmed) ? Number(trimmed) : null;
  }

  cardForm.addEventListener('submit', function (event) {
    event.preventDefault();
    var save = document.getElementById('card-save');
    addError.textContent = '';
    var card = {
      cardNumber: document.getElementById('card-number').value.replace(/[\s-]/g, ''),
      expMonth: whole(document.getElementById('card-exp-month').value),
      expYear: whole(document.getElementById('card-exp-year').value)
    };
    save.disabled = true;
    api('POST', sandboxConfirmPath, card).then(function (answer) {
      save.disabled = false;
      if (!answer.ok) {
        // The provider's own words: a decline, an expired card, a malformed number.
        addError.textContent = messageOf(answer);
        return;
      }
      cardForm.reset();
      closeAddForms();
      announce('Card added.');
      refresh('methods').then(function () { addButton.focus(); });
    });
  });

  stripeForm.addEventListener('submit', function (event) {
    event.preventDefault();
    if (!stripeSetup) return;
    addError.textContent = '';
    var before = methodCount();
    stripeSetup.stripe.confirmSetup({ elements: stripeSetup.elements, redirect: 'if_required' })
      .then(function (result) {
        if (result.error) {
          addError.textContent = result.error.message;
          return;
        }
        announce('Saved. Your card appears here in a moment.');
        waitForNewMethod(before);
      });
  });

  function setDefault(id) {
    api('POST', '/v1/customers/portal/set-subscription-payment-method', { paymentMethodId: id }).then(function (answer) {
      if (!answer.ok) return showError(id, messageOf(answer));
      announce('Default payment method changed.');
      refresh('methods');
    });
  }

  function remove(id) {
    api('DELETE', '/v1/customers/portal/payment-methods/' + encodeURIComponent(id)).then(function (answer) {
      // A card the subscription is charged to is refused (409): the reason is the API's.
      if (!answer.ok) return showError(id, messageOf(answer));
      announce('Payment method removed.');
      refresh('methods');
    });
  }

  // ---- Invoices ----------------------------------------------------------------------------

  // A link cannot send the session header, so the PDF is fetched and handed to the browser.
  function downloadPdf(button) {
    var url = button.getAttribute('data-url');
    button.disabled = true;
    fetch(url, { headers: auth }).then(function (response) {
      if (!response.ok) {
        return response.json().then(function (body) { throw new Error(body.error); },
          function () { throw new Error('The PDF could not be downloaded (' + response.status + ').'); });
      }
      return response.blob().then(function (blob) {
        var link = document.createElement('a');
        link.href = URL.createObjectURL(blob);
        link.download = button.getAttribute('data-filename');
        document.body.appendChild(link);
        link.click();
        link.remove();
        window.setTimeout(function () { URL.revokeObjectURL(link.href); }, 60000);
      });
    }).catch(function (error) {
      showError(url, error.message || 'The PDF could not be downloaded.');
    }).then(function () { button.disabled = false; });
  }

  // ---- Credits -----------------------------------------------------------------------------

  function purchase(form) {
    var topUpId = form.getAttribute('data-top-up');
    if (purchasing[topUpId]) return;
    var button = form.querySelector('button[type="submit"]');
    var quantity = whole(form.querySelector('input[name="quantity"]').value);
    showError(topUpId, '');
    // One key per purchase intent: a second click, or a retry after a lost answer, sends the
    // same key, and the API buys once.
    var key = purchaseKeys[topUpId] || (purchaseKeys[topUpId] = newKey());
    purchasing[topUpId] = true;
    button.disabled = true;
    api('POST', '/v1/customers/portal/credits/purchase', { topUpId: topUpId, quantity: quantity }, { 'Idempotency-Key': key })
      .then(function (answer) {
        delete purchasing[topUpId];
        // A purchase that may still go through keeps its key, so that trying again cannot
        // buy twice: a lost answer (0), one still running under the key, or a failure on the
        // server's side (5xx: the server finishes the purchase on its own). Any other answer
        // ended it: bought, or refused (no card, a decline), and a new try is a new purchase.
        var inFlight = answer.status === 409 && answer.body &&
          answer.body.code === 'idempotency_key_in_flight';
        if (answer.status !== 0 && answer.status < 500 && !inFlight) delete purchaseKeys[topUpId];
        var current = root.querySelector('form[data-top-up="' + CSS.escape(topUpId) + '"]');
        if (current) current.querySelector('button[type="submit"]').disabled = false;
        if (!answer.ok) return showError(topUpId, messageOf(answer));
        announce('Credits purchased.');
        refresh('credits');
        refresh('invoices');
        refresh('payments');
      });
  }

  // ---- Wiring ------------------------------------------------------------------------------

  root.addEventListener('click', function (event) {
    var target = event.target.closest('[data-action]');
    if (!target || !root.contains(target)) return;
    var action = target.getAttribute('data-action');
    var id = target.getAttribute('data-id');
    if (id) showError(id, '');
    if (action === 'set-default') setDefault(id);
    else if (action === 'remove') remove(id);
    else if (action === 'pdf') downloadPdf(target);
    else if (action === 'cancel-card') { closeAddForms(); addButton.focus(); }
  });
  addButton.addEventListener('click', startAddCard);
  root.addEventListener('submit', function (event) {
    var form = event.target.closest('form[data-top-up]');
    if (!form) return;
    event.preventDefault();
    purchase(form);
  });
  root.addEventListener('input', function (event) {
    // Another quantity is another purchase: it gets a key of its own.
    var form = event.target.closest('form[data-top-up]');
    if (form && !purchasing[form.getAttribute('data-top-up')]) delete purchaseKeys[form.getAttribute('data-top-up')];
  });

  // ---- Live updates ------------------------------------------------------------------------

  // Which tabs a change of the stream touches, by the event's name (see the stream's
  // description in /openapi.json); `reload` (the page missed too much) and anything else
  // refresh every tab. `ready` only says the stream is caught up.
  var ALL_TABS = ['methods', 'invoices', 'payments', 'credits'];
  var TABS_OF = {
    payment_method: ['methods'],
    subscription: ['methods'],
    invoice: ['invoices'],
    payment: ['payments', 'invoices'],
    credits: ['credits']
  };
  function tabsFor(event) {
    return TABS_OF[event.type] || ALL_TABS;
  }

  var pending = {};
  var pendingTimer = null;
  function changed(event) {
    tabsFor(event).forEach(function (name) { pending[name] = true; });
    // A burst of events (a renewal is several) refreshes each tab once.
    if (pendingTimer) return;
    pendingTimer = window.setTimeout(function () {
      var names = Object.keys(pending);
      pending = {};
      pendingTimer = null;
      names.forEach(refresh);
    }, 150);
  }

  // EventSource cannot send headers, so the session goes in the query. Without a stream (an
  // older server) the source just closes: the page works as before, without live updates.
  if ('EventSource' in window) {
    try {
      var stream = new EventSource('/v1/customers/portal/stream?session=' + encodeURIComponent(session));
      stream.onmessage = changed;
      ['customer', 'payment_method', 'subscription', 'invoice', 'payment', 'credits',
        'organization', 'reload'].forEach(function (name) {
        stream.addEventListener(name, changed);
      });
    } catch (e) { /* no live updates */ }
  }

  // ---- Embedding ---------------------------------------------------------------------------

  if (window.parent !== window) {
    // Tell the embedding page (embed.js) how tall to make the frame, so it never scrolls inside.
    var lastHeight = 0;
    var report = function () {
      var height = document.documentElement.scrollHeight;
      if (height !== lastHeight) {
        lastHeight = height;
        window.parent.postMessage({ type: 'billstream-portal:height', height: height }, '*');
      }
    };
    if ('ResizeObserver' in window) new ResizeObserver(report).observe(document.body);
    report();
    // Theme variables from the embedding page: only the documented --bs-* names.
    window.addEventListener('message', function (event) {
      var message = event.data;
      if (!message || message.type !== 'billstream-portal:theme' || typeof message.vars !== 'object') return;
      Object.keys(message.vars).forEach(function (name) {
        var value = String(message.vars[name]);
        if (/^--bs-[a-z-]+$/.test(name) && !/[;{}<>]/.test(value)) {
          document.documentElement.style.setProperty(name, value);
        }
      });
    });
  }

  localize(root);
})();
