/// The fake browser site's pages: shells whose scripts draw everything.
enum FakeBrowserPages {
    /// Draws what the API answered: its JSON through `render`, or its HTML (the phrase page of
    /// an ended session) as it came.
    static let common = """
        <script>
        async function show(path, render, options) {
          const answer = await fetch(path, Object.assign({credentials: 'same-origin'}, options || {}));
          const type = answer.headers.get('content-type') || '';
          if (type.includes('json')) { document.getElementById('app').innerHTML = render(await answer.json()); }
          else { document.body.innerHTML = await answer.text(); }
        }
        </script>
        """

    static let login = """
        <html><head><title>Sign in</title></head><body><div id="app">Loading…</div>
        <script>
        setTimeout(() => {
          document.getElementById('app').innerHTML =
            '<label>User <input id="username"></label><label>Password <input id="password" type="password"></label>' +
            '<button id="sign-in">Sign in</button><p id="error"></p>';
          document.getElementById('sign-in').addEventListener('click', async () => {
            const challenge = await (await fetch('/api/challenge')).json();
            const body = {
              username: document.getElementById('username').value,
              password: document.getElementById('password').value,
              nonce: challenge.nonce,
              proof: challenge.nonce.split('').reverse().join('')
            };
            const answer = await fetch('/api/login', {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify(body)});
            if (answer.ok) { location.href = '/home'; }
            else { document.getElementById('error').textContent = 'Invalid username or password'; }
          });
        }, 50);
        </script></body></html>
        """

    /// Its script carries the phrase too (as a message it could draw): only what the page shows counts.
    static let home = """
        <html><head><title>Home</title></head><body><div id="app">Loading…</div>\(common)
        <script>const offline = 'You are either not logged in or your session has expired';</script>
        <script>show('/api/me', (me) => '<h1 id="user">' + me.user + '</h1><a id="logout" href="/logout">Log out</a>');</script>
        </body></html>
        """

    static let item = """
        <html><head><title>Item</title></head><body><div id="app">Loading…</div>\(common)
        <script>
        const n = location.pathname.split('/').pop();
        show('/api/items/' + n, (item) => '<span id="price">item ' + item.item + ' for ' + item.user + '</span>');
        </script></body></html>
        """

    static let book = """
        <html><head><title>Book</title></head><body><div id="app"><button id="confirm">Confirm the booking</button></div>\(common)
        <script>
        document.getElementById('confirm').addEventListener('click', () =>
          show('/api/bookings', (b) => '<p id="booked">Booked #' + b.booking + '</p>', {method: 'POST'}));
        </script></body></html>
        """

    static func slow(delay: Int) -> String {
        """
        <html><head><title>Slow</title></head><body><div id="app">Working…</div>\(common)
        <script>setTimeout(() => show('/api/me', (me) => '<p id="done">done for ' + me.user + '</p>'), \(delay));</script>
        </body></html>
        """
    }
}
