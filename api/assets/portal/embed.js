// billstream portal embed: puts the hosted portal in a frame on the merchant's page.
//
//   <div id="billing"></div>
//   <script src="https://billing.example.com/portal/embed.js"
//           data-session="ps_…" data-target="#billing"></script>
//
// or, from your own script: BillstreamPortal.mount('#billing', { session: 'ps_…',
// theme: { '--bs-accent': '#0a7d55' } }). The frame grows with its contents.
(function () {
  'use strict';
  var script = document.currentScript;
  var origin = script ? new URL(script.src, window.location.href).origin : window.location.origin;

  function mount(target, options) {
    var host = typeof target === 'string' ? document.querySelector(target) : target;
    if (!host) throw new Error('BillstreamPortal: no element ' + target);
    if (!options || !options.session) throw new Error('BillstreamPortal: a session token is required');
    var frame = document.createElement('iframe');
    frame.src = origin + '/portal?session=' + encodeURIComponent(options.session);
    frame.title = options.title || 'Billing';
    frame.style.width = '100%';
    frame.style.border = '0';
    frame.style.minHeight = (options.minHeight || 480) + 'px';
    frame.setAttribute('referrerpolicy', 'no-referrer');
    window.addEventListener('message', function (event) {
      if (event.origin !== origin || event.source !== frame.contentWindow) return;
      var message = event.data;
      if (message && message.type === 'billstream-portal:height') {
        frame.style.height = Math.ceil(message.height) + 'px';
      }
    });
    frame.addEventListener('load', function () {
      if (options.theme) {
        frame.contentWindow.postMessage({ type: 'billstream-portal:theme', vars: options.theme }, origin);
      }
    });
    host.appendChild(frame);
    return frame;
  }

  window.BillstreamPortal = { mount: mount };
  if (script && script.getAttribute('data-session')) {
    var place = function () {
      mount(script.getAttribute('data-target') || script.parentNode, {
        session: script.getAttribute('data-session')
      });
    };
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', place);
    else place();
  }
})();
