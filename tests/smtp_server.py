"""A real SMTP server for the e-mail channel's tests (aiosmtpd).

It binds a free port itself and prints `listening on 127.0.0.1:PORT` as its first line, so a
test never guesses a port or waits on a timer. Every accepted message is written as
`N.eml` into the directory given on the command line. Recipients whose local part starts
with `reject550` are refused with 550 and those starting with `defer451` with 451, so the
client's classification of answers is tested against a real conversation.

    python3 smtp_server.py MAILDIR [--security plain|starttls|tls] [--cert PEM --key PEM]
                                   [--login USER:PASSWORD]
"""

import argparse
import asyncio
import ssl
import sys
from pathlib import Path

try:
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
except ImportError:
    sys.stderr.write("aiosmtpd is missing: install it with `python3 -m pip install aiosmtpd`\n")
    sys.exit(3)


class Handler:
    """Answers recipients by their local part and stores what it accepts."""

    def __init__(self, maildir: Path):
        self.maildir = maildir
        self.stored = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local_part = address.split("@", 1)[0].lower()
        # The refusals quote the address, as real servers do, so the tests can check the
        # client keeps it out of its error messages.
        if local_part.startswith("reject550"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if local_part.startswith("defer451"):
            return f"451 4.3.0 <{address}>: Temporary lookup failure"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.stored += 1
        # Written under a temporary name and renamed, so a reader never sees half a file.
        partial = self.maildir / f"{self.stored}.eml.partial"
        partial.write_bytes(envelope.original_content)
        partial.rename(self.maildir / f"{self.stored}.eml")
        return "250 Message accepted for delivery"


class Login:
    """Accepts exactly one user name and password."""

    def __init__(self, user: str, password: str):
        self.user = user.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        accepted = isinstance(auth_data, LoginPassword) and auth_data.login == self.user and auth_data.password == self.password
        # handled=False makes aiosmtpd answer a refusal with 535 itself.
        return AuthResult(success=accepted, handled=False)


async def serve(arguments) -> None:
    handler = Handler(Path(arguments.maildir))
    context = None
    if arguments.security != "plain":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(arguments.cert, arguments.key)
    options = {}
    if arguments.login:
        user, password = arguments.login.split(":", 1)
        options = {"authenticator": Login(user, password), "auth_required": True}
    if arguments.security == "starttls":
        options.update(tls_context=context, require_starttls=True)

    def connection():
        return SMTP(handler, hostname="smtp.test", **options)

    loop = asyncio.get_running_loop()
    implicit_tls = context if arguments.security == "tls" else None
    server = await loop.create_server(connection, "127.0.0.1", 0, ssl=implicit_tls)
    port = server.sockets[0].getsockname()[1]
    print(f"listening on 127.0.0.1:{port}", flush=True)
    await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("maildir")
    parser.add_argument("--security", choices=["plain", "starttls", "tls"], default="plain")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--login")
    arguments = parser.parse_args()
    if arguments.security != "plain" and not (arguments.cert and arguments.key):
        parser.error(f"--security {arguments.security} needs --cert and --key")
    asyncio.run(serve(arguments))


if __name__ == "__main__":
    main()
