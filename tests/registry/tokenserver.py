#!/usr/bin/env python3
"""Minimal Docker registry v2 token server (for local tests only; binds 127.0.0.1).
usage: python3 tokenserver.py KEY.pem CERT.pem PORT      (needs `cryptography`; PORT 0: any free
port, printed on stdout once listening). A copy of ../shared/tools/registry-tokenserver.py.
GET /token?service=S&scope=repository:NAME:pull,push[&scope=...]
Tokens are RS256 JWTs with an x5c header holding CERT; give the registry the same
cert as auth.token.rootcertbundle, issuer 'minirun-test-issuer', service 'minirun-registry'.
Basic auth with a known user => requested actions granted; anonymous => pull only.
Users: $TOKEN_USERS="user:pass[,user:pass...]", default the dummy test account
testuser:testpass (a throw-away fixture, not a real credential)."""
import base64, json, os, time, uuid, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse, parse_qs
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography import x509

if len(sys.argv) != 4:
    sys.exit(__doc__)
KEY = serialization.load_pem_private_key(open(sys.argv[1], 'rb').read(), None)
CERT = x509.load_pem_x509_certificate(open(sys.argv[2], 'rb').read())
ISSUER, SERVICE, PORT = 'minirun-test-issuer', 'minirun-registry', int(sys.argv[3])
USERS = dict(u.split(':', 1) for u in os.environ.get('TOKEN_USERS', 'testuser:testpass').split(',') if ':' in u)
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b'=').decode()

def make_token(sub, access):
    hdr = {'alg': 'RS256', 'typ': 'JWT',
           'x5c': [base64.b64encode(CERT.public_bytes(serialization.Encoding.DER)).decode()]}
    now = int(time.time())
    claims = {'iss': ISSUER, 'sub': sub, 'aud': SERVICE, 'exp': now + 300, 'nbf': now - 10,
              'iat': now, 'jti': str(uuid.uuid4()), 'access': access}
    signing_input = (b64(json.dumps(hdr).encode()) + '.' + b64(json.dumps(claims).encode())).encode()
    sig = KEY.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return signing_input.decode() + '.' + b64(sig)

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        u = urlparse(self.path)
        if u.path != '/token':
            self.send_response(404); self.end_headers(); return
        q = parse_qs(u.query)
        user = ''
        auth = self.headers.get('Authorization', '')
        if auth.startswith('Basic '):
            name, _, pw = base64.b64decode(auth[6:]).decode().partition(':')
            if USERS.get(name) != pw:
                self.send_response(401); self.end_headers(); return
            user = name
        access = []
        for scope in q.get('scope', []):
            typ, name, actions = scope.split(':', 2) if scope.count(':') >= 2 else (scope, '', '')
            acts = actions.split(',') if actions else []
            if not user:
                acts = [a for a in acts if a == 'pull']
            access.append({'type': typ, 'name': name, 'actions': acts})
        tok = make_token(user or 'anonymous', access)
        body = json.dumps({'token': tok, 'access_token': tok, 'expires_in': 300,
                           'issued_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, fmt, *args):
        sys.stderr.write('token: ' + (fmt % args) + '\n')

srv = ThreadingHTTPServer(('127.0.0.1', PORT), H)
print(srv.server_address[1], flush=True)  # PORT 0: the test fixture reads the port it got
srv.serve_forever()
