// The page script both chat demos share (socket.io 0.9 and 4): it shows the
// worker that serves the page, joins the chat with a nick and shows what
// everyone says. A page connects its own socket and passes it to chat(),
// which returns what the page may add to: the socket.io 4 page shows its
// connection state with it.
function chat(socket) {
  var log = document.getElementById('log');
  var page = {
    // A class for the lines that arrive while it is set (the socket.io 4
    // page marks what a recovered session missed).
    mark: '',
    line: function (html) {
      var p = document.createElement('p');
      p.innerHTML = html;
      if (page.mark) p.className = page.mark;
      log.appendChild(p);
      log.scrollTop = log.scrollHeight;
    },
    show: function (id, text) { document.getElementById(id).textContent = text; },
    // The message box is open once the server knows our nick.
    joined: function (yes) {
      document.getElementById('text').disabled = !yes;
      document.getElementById('send').disabled = !yes;
      if (yes) document.body.setAttribute('data-joined', 'true');
      else document.body.removeAttribute('data-joined');
    }
  };
  function esc(s) { return String(s).replace(/[&<>"]/g, function (c) { return '&#' + c.charCodeAt(0) + ';'; }); }
  socket.on('welcome', function (m) { page.show('worker', m.worker); page.show('pid', m.pid); });
  socket.on('joined', function (m) { page.line('<span class="meta">' + esc(m.nick) + ' joined (worker ' + m.worker + ')</span>'); });
  socket.on('said', function (m) { page.line('<b>' + esc(m.nick) + '</b>: <span class="text">' + esc(m.text) + '</span> <span class="meta">via worker ' + m.worker + '</span>'); });
  document.getElementById('nick-form').onsubmit = function (e) {
    e.preventDefault();
    socket.emit('nick', document.getElementById('nick').value, function (r) {
      if (!r || !r.ok) return;
      page.joined(true);
      if (r.online) page.line('<span class="meta">' + r.online + ' online across the cluster</span>');
    });
  };
  document.getElementById('say-form').onsubmit = function (e) {
    e.preventDefault();
    var input = document.getElementById('text');
    if (!input.value) return;
    socket.emit('say', input.value, function () {});
    input.value = '';
  };
  return page;
}
