"""Credential shapes people really write into agent memory, and look-alikes that must stay.

Data only, so it is easy to extend: add a :class:`Cred` with the text as it would appear in a
memory file, the planted value(s) that must disappear and the rule text that must survive; add
a look-alike as a plain string (a whole memory fragment) that redaction must return unchanged.
Used by tests/secrets/test_corpus.py (recall must be 1.0, false positives 0) and by
benchmarks/bench_secrets.py (prints both figures).

Every value here is invented. Provider-format tokens are built from a seeded generator so they
have the right length and alphabet without being anyone's key.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

_B62 = string.ascii_letters + string.digits
_HEX = "0123456789abcdef"
_B64 = _B62 + "+/"


def _r(n: int, alphabet: str = _B62, seed: str = "") -> str:
    """A deterministic random string (the same on every run, so failures are reproducible)."""
    rng = random.Random(f"{seed}:{n}:{alphabet}")
    return "".join(rng.choice(alphabet) for _ in range(n))


@dataclass(frozen=True)
class Cred:
    """One credential shape: ``values`` must be gone after redaction, ``keep`` must remain."""

    id: str
    text: str
    values: tuple[str, ...]
    keep: tuple[str, ...] = ()


def _c(id_: str, text: str, *values: str, keep: tuple[str, ...] = ()) -> Cred:
    return Cred(id_, text, tuple(values), keep)


# --- provider formats the detector claims -------------------------------------------------------
AWS_ID = "AKIA" + _r(16, string.ascii_uppercase + "234567", "aws")
AWS_SECRET = _r(40, _B64, "aws-secret")
GHP = "ghp_" + _r(36, seed="ghp")
GH_PAT = "github_pat_11" + _r(20, string.ascii_uppercase + string.digits, "pat") + "_" + _r(59, seed="pat2")
GLPAT = "glpat-" + _r(20, _B62 + "-_", "glpat")
SLACK = "xoxb-" + _r(12, string.digits, "sl1") + "-" + _r(13, string.digits, "sl2") + "-" + _r(24, seed="sl3")
SLACK_HOOK = "https://hooks.slack.com/services/T" + _r(8, string.ascii_uppercase + string.digits, "h1") + "/B" + \
    _r(8, string.ascii_uppercase + string.digits, "h2") + "/" + _r(24, seed="h3")
GOOGLE = "AIza" + _r(35, _B62 + "-_", "google")
HF = "hf_" + _r(34, string.ascii_letters, "hf")
STRIPE = "sk_live_" + _r(24, seed="stripe")
STRIPE_R = "rk_test_" + _r(24, seed="stripe-r")
NPM = "npm_" + _r(36, seed="npm")
SENDGRID = "SG." + _r(22, _B62 + "-_", "sg1") + "." + _r(43, _B62 + "-_", "sg2")
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJvcHMtYWRtaW4iLCJyb2xlIjoiYWRtaW4ifQ."
       + _r(43, _B62 + "-_", "jwt"))
OPENAI = "sk-proj-" + _r(48, _B62 + "-_", "openai")
ANTHROPIC = "sk-ant-api03-" + _r(60, _B62 + "-_", "anthropic")
PYPI = "pypi-AgEIcHlwaS5vcmc" + _r(70, _B62 + "-_", "pypi")
TELEGRAM = _r(10, string.digits, "tg1") + ":AA" + _r(33, _B62 + "-_", "tg2")
DISCORD = "M" + _r(23, seed="dc1") + "." + _r(6, seed="dc2") + "." + _r(27, seed="dc3")
TWILIO = "SK" + _r(32, _HEX, "twilio")
MAILCHIMP = _r(32, _HEX, "mc") + "-us14"
SQUARE = "sq0csp-" + _r(43, _B62 + "-_", "square")
ARTIFACTORY = "AKCp8" + _r(68, seed="artifactory")
AZURE = _r(86, _B64, "azure") + "=="
UNSEAL = _r(32, _HEX, "unseal")
CLOUDANT_PW = _r(64, _HEX, "cloudant")
IBM_HMAC = _r(48, _HEX, "cos")
IBM_IAM = _r(44, _B62 + "-_", "iam")
SOFTLAYER = _r(64, string.ascii_lowercase + string.digits, "softlayer")
TWILIO_AC = "AC" + _r(32, _HEX, "twilio-ac")
PEM_BODY = [_r(64, _B64, f"pem{i}") for i in range(4)]

CREDENTIALS: list[Cred] = [
    # --- the shapes from the report ---------------------------------------------------------
    _c("prose-with-password",
       "- Local admin account is ops-admin@example.test with password Harbor!Sail2024",
       "Harbor!Sail2024", keep=("Local admin account is ops-admin@example.test with password",)),
    _c("prose-with-password-2", "- Log in to Grafana with password Hunter2!Secret before the demo.",
       "Hunter2!Secret", keep=("before the demo.",)),
    _c("login-user-slash-pw", "- QA: login admin / S3cr3t!pass on the staging box", "S3cr3t!pass",
       keep=("login admin /", "on the staging box")),
    _c("pass-quoted", '- The seed user is qa@example.test, pass "QaPassWord2718"', "QaPassWord2718",
       keep=("The seed user is qa@example.test, pass",)),
    _c("admin-pw", "- Router admin pw Zebra42!x (rotate quarterly)", "Zebra42!x", keep=("(rotate quarterly)",)),
    _c("mdc-frontmatter-pw",
       "---\ndescription: Staging access; admin pw Kiwi77#fruit for the CMS\nglobs: [\"**/*.ts\"]\nalwaysApply: true\n---\n"
       "- Use the CMS admin only for migrations.",
       "Kiwi77#fruit", keep=("alwaysApply: true", "Use the CMS admin only for migrations.")),
    _c("german-passwort", "- Testkonto: Passwort: GermanPw123", "GermanPw123", keep=("Testkonto",)),
    _c("shell-default-redis", 'REDISCLI_AUTH="${REDIS_AUTH:-myredissecret}" redis-cli ping', "myredissecret",
       keep=("REDIS_AUTH", "redis-cli ping")),
    _c("shell-default-db", "psql \"postgres://app:${DB_PASSWORD:-PgDefault99}@localhost/app\"", "PgDefault99",
       keep=("DB_PASSWORD",)),
    _c("table-password-column",
       "| User | Password | Role |\n|------|----------|------|\n| admin | Adm1n!Tbl | owner |\n| qa | qa-pass-77 | tester |",
       "Adm1n!Tbl", "qa-pass-77", keep=("| admin |", "| owner |", "| qa |", "| tester |")),
    _c("vault-unseal", f"- Vault unseal key: {UNSEAL}", UNSEAL, keep=("Vault unseal key",)),
    _c("vault-unseal-prose", f"- To unseal vault in dev run `vault operator unseal {UNSEAL}`", UNSEAL,
       keep=("vault operator unseal",)),
    _c("mcp-login", "Login admin / McpS3cret!pw", "McpS3cret!pw", keep=("Login admin /",)),
    # --- other languages --------------------------------------------------------------------
    _c("de-kennwort", "- Das Kennwort für den Staging-Server ist Sommer2024!", "Sommer2024!",
       keep=("Das Kennwort für den Staging-Server ist",)),
    _c("fr-mot-de-passe", "- Le mot de passe de la base : Fromage#42", "Fromage#42", keep=("Le mot de passe",)),
    _c("fr-mdp", "- mdp: Baguette2023", "Baguette2023"),
    _c("es-contrasena", "- La contraseña del servidor es Paella!2024", "Paella!2024", keep=("La contraseña",)),
    _c("es-clave", "- Clave: Tortilla77", "Tortilla77"),
    _c("pt-senha", "- Senha do admin: Feijoada#9", "Feijoada#9", keep=("Senha do admin",)),
    _c("it-parola-d-ordine", "- Parola d'ordine: Gelato2024!", "Gelato2024!"),
    _c("it-password", "- La password di staging è Pizza!Napoli1", "Pizza!Napoli1", keep=("La password di staging",)),
    _c("nl-wachtwoord", "- Wachtwoord voor de database: Stroopwafel8", "Stroopwafel8", keep=("Wachtwoord voor de database",)),
    _c("ru-parol", "- Пароль администратора: Matryoshka77", "Matryoshka77", keep=("Пароль администратора",)),
    _c("pl-haslo", "- Hasło do bazy: Pierogi2024", "Pierogi2024", keep=("Hasło do bazy",)),
    _c("sv-losenord", "- Lösenord: Kanelbulle5", "Kanelbulle5"),
    _c("tr-sifre", "- Şifre: Baklava!77", "Baklava!77"),
    _c("ja-password", "- 管理者パスワード: Sakura2024x", "Sakura2024x"),
    _c("zh-mima", "- 数据库密码：Longjing88", "Longjing88"),
    _c("ko-password", "- 비밀번호: Kimchi4242", "Kimchi4242"),
    # --- key = value, .env, config ----------------------------------------------------------
    _c("env-db-password", "DB_PASSWORD=Sup3rS3cret", "Sup3rS3cret", keep=("DB_PASSWORD=",)),
    _c("env-export", "export PGPASSWORD='pgpass2024'", "pgpass2024", keep=("export PGPASSWORD=",)),
    _c("env-session-secret", "SESSION_SECRET=f9Kq2LxW7vRt3ZpN", "f9Kq2LxW7vRt3ZpN"),
    _c("env-redis-auth", "REDISCLI_AUTH=myredissecret", "myredissecret"),
    _c("yaml-password", "database:\n  user: app\n  password: Yaml!Pass42\n  port: 5432", "Yaml!Pass42",
       keep=("user: app", "port: 5432")),
    _c("json-password", '{"username": "svc", "password": "JsonPw#2024"}', "JsonPw#2024", keep=('"username": "svc"',)),
    _c("toml-api-key", 'api_key = "Zx9QmT4vLp2RkW8s"', "Zx9QmT4vLp2RkW8s"),
    _c("staging-password-is", "- The staging password is Summer2024!", "Summer2024!"),
    _c("bold-password", "- **Password**: `Tr0ub4dor&3`", "Tr0ub4dor&3"),
    _c("changeme", "- default admin password: changeme", "changeme", keep=("default admin password",)),
    # --- code blocks, comments --------------------------------------------------------------
    _c("fenced-env", "```bash\nexport API_TOKEN=tok_9f8e7d6c5b4a3928\nnpm run deploy\n```", "tok_9f8e7d6c5b4a3928",
       keep=("npm run deploy", "```bash")),
    _c("fenced-python", '```python\nclient = Client(api_key="Q7wE9rT2yU4iO6pA")\n```', "Q7wE9rT2yU4iO6pA",
       keep=("client = Client(",)),
    _c("html-comment", "<!-- staging password: Comment!Pw9 -->", "Comment!Pw9", keep=("<!--", "-->")),
    _c("html-comment-admin-pw", "<!-- admin pw Hidden#Note7 -->", "Hidden#Note7"),
    _c("md-link-comment", "[//]: # (token: Zq8wX2mN4pL6rT1vK3)", "Zq8wX2mN4pL6rT1vK3"),
    # --- URLs ---------------------------------------------------------------------------------
    _c("url-postgres", "DATABASE_URL=postgres://admin:pa55w0rd@db:5432/app", "pa55w0rd", keep=("@db:5432/app",)),
    _c("url-https-basic", "- Mirror: https://deploy:Mirr0r!Key@mirror.example.test/simple", "Mirr0r!Key",
       keep=("mirror.example.test/simple",)),
    _c("url-git-oauth", f"git clone https://oauth2:{GLPAT}@gitlab.example.test/team/app.git", GLPAT),
    _c("url-query-token", "- Webhook: https://hooks.example.test/in?token=Qw3rTy8uIo9pAs2d", "Qw3rTy8uIo9pAs2d",
       keep=("https://hooks.example.test/in?token=",)),
    _c("url-redis", "redis://:redispw2@cache:6379/0", "redispw2"),
    # --- CLI flags ------------------------------------------------------------------------------
    _c("mysql-p", "mysql -uroot -pSecret123 app < dump.sql", "Secret123", keep=("mysql -uroot -p", "app < dump.sql")),
    _c("mysql-long", "mysqldump --user=root --password=DumpPw!42 app", "DumpPw!42"),
    _c("docker-login-p", "docker login -u deployer -p Dock3r!Hub registry.example.test", "Dock3r!Hub",
       keep=("registry.example.test",)),
    _c("psql-password-flag", "pg_dump --password=Pg!Dump2024 -h db app", "Pg!Dump2024"),
    _c("curl-user", "curl -u admin:admin123 https://api.example.test/health", "admin123"),
    _c("sshpass", "sshpass -p 'Ssh!Pass99' ssh deploy@10.0.0.5", "Ssh!Pass99"),
    _c("redis-cli-a", "redis-cli -h cache -a RedisCli!77 ping", "RedisCli!77"),
    _c("mongosh-p", "mongosh -u admin -p M0ngo!Pw --authenticationDatabase admin", "M0ngo!Pw"),
    _c("htpasswd", "htpasswd -b -c .htpasswd admin Htp4ss!wd", "Htp4ss!wd"),
    _c("docker-env", "docker run -e POSTGRES_PASSWORD=DockerPg!1 postgres:16", "DockerPg!1", keep=("postgres:16",)),
    # --- headers --------------------------------------------------------------------------------
    _c("bearer", "Authorization: Bearer abcdef1234567890abcdef", "abcdef1234567890abcdef"),
    _c("basic", "Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
    _c("x-api-key", 'curl -H "X-API-Key: Hdr9Key2Long4Val8" https://api.example.test', "Hdr9Key2Long4Val8"),
    # --- provider tokens --------------------------------------------------------------------------
    _c("aws-access-key", f"AWS_ACCESS_KEY_ID={AWS_ID}", AWS_ID),
    _c("aws-secret-key", f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET),
    _c("github-ghp", f"- CI uses {GHP} for releases", GHP, keep=("for releases",)),
    _c("github-pat", f"GH_TOKEN={GH_PAT}", GH_PAT),
    _c("gitlab-pat", f"- gitlab: {GLPAT}", GLPAT),
    _c("slack-token", f"- Slack bot: {SLACK}", SLACK),
    _c("slack-webhook", f"- Alerts go to {SLACK_HOOK}", SLACK_HOOK[len("https://hooks.slack.com/services/"):]),
    _c("google-api-key", f"- Maps key {GOOGLE}", GOOGLE),
    _c("huggingface", f"- HF_TOKEN {HF}", HF),
    _c("stripe-live", f"- Stripe: {STRIPE}", STRIPE),
    _c("stripe-restricted", f"- restricted key {STRIPE_R}", STRIPE_R),
    _c("npm-token", f"//registry.npmjs.org/:_authToken={NPM}", NPM),
    _c("sendgrid", f"SENDGRID_API_KEY={SENDGRID}", SENDGRID),
    _c("jwt", f"- Test JWT: {JWT}", JWT),
    _c("openai", f"OPENAI_API_KEY={OPENAI}", OPENAI),
    _c("anthropic", f"- Claude key {ANTHROPIC}", ANTHROPIC),
    _c("pypi", f"- twine upload -u __token__ -p {PYPI}", PYPI),
    _c("telegram", f"- Telegram bot {TELEGRAM}", TELEGRAM),
    _c("discord", f"- Discord bot token {DISCORD}", DISCORD),
    _c("twilio", f"- Twilio {TWILIO}", TWILIO),
    _c("mailchimp", f"- Mailchimp {MAILCHIMP}", MAILCHIMP),
    _c("square", f"- Square {SQUARE}", SQUARE),
    _c("artifactory", f"- Artifactory {ARTIFACTORY}", ARTIFACTORY),
    _c("azure-storage", f"DefaultEndpointsProtocol=https;AccountName=app;AccountKey={AZURE};EndpointSuffix=core.windows.net",
       AZURE, keep=("AccountName=app",)),
    _c("cloudant", f"- Cloudant: https://acct:{CLOUDANT_PW}@acct.cloudant.com", CLOUDANT_PW),
    _c("ibm-cos-hmac", f"cos_hmac_secret_access_key = {IBM_HMAC}", IBM_HMAC),
    _c("ibm-cloud-iam", f"ibm_cloud_iam_api_key: {IBM_IAM}", IBM_IAM),
    _c("softlayer", f"softlayer_api_key = {SOFTLAYER}", SOFTLAYER),
    _c("twilio-account", f"- Twilio account {TWILIO_AC}", TWILIO_AC),
    _c("private-key-block", "```\n-----BEGIN OPENSSH PRIVATE KEY-----\n" + "\n".join(PEM_BODY)
       + "\n-----END OPENSSH PRIVATE KEY-----\n```", *PEM_BODY),
    # --- auth sections, mixed ---------------------------------------------------------------------
    _c("auth-section",
       "## Test accounts\n- admin@example.test / `Adm1n!2024`\n- Use `$DB_PASSWORD` from the vault for the database.",
       "Adm1n!2024", keep=("admin@example.test", "Use `$DB_PASSWORD` from the vault for the database.")),
    _c("wifi", "- Office wifi: SSID Guest, password Wif1!Office", "Wif1!Office", keep=("SSID Guest",)),
    _c("table-token-column",
       "| Service | Token |\n|---|---|\n| sentry | sntrys_Zx8Qw2Er4Ty6Ui8Op0As |\n| grafana | $GRAFANA_TOKEN |",
       "sntrys_Zx8Qw2Er4Ty6Ui8Op0As", keep=("$GRAFANA_TOKEN", "| sentry |")),
    _c("table-api-key-column",
       "| Env | API key | Notes |\n| --- | --- | --- |\n| prod | `Prd7Key9Val3Xyz` | rotate monthly |",
       "Prd7Key9Val3Xyz", keep=("rotate monthly", "| prod |")),
    _c("table-german-column",
       "| Konto | Passwort |\n|---|---|\n| root | Wurzel!99 |", "Wurzel!99", keep=("| root |",)),
    _c("yaml-frontmatter-token",
       "---\ntitle: Deploy notes\napi_token: Ym9Ld2Fp7Rt5Pq3N\n---\n- Deploy from main only.",
       "Ym9Ld2Fp7Rt5Pq3N", keep=("title: Deploy notes", "Deploy from main only.")),
    _c("credentials-colon", "- Staging creds: deploy:St4ge!Creds", "St4ge!Creds", keep=("Staging creds",)),
    _c("user-and-password", "- user `svc-report` and password `R3port!Svc`", "R3port!Svc", keep=("svc-report",)),
    _c("password-for-qualifier", "- Password for staging: `S3cret!`", "S3cret!"),
    _c("secret-key-django", "SECRET_KEY=django-insecure-8x!k2@p", "django-insecure-8x!k2@p"),
    # --- config files and connection strings ----------------------------------------------------
    _c("netrc", "machine api.example.test login deploy password Netrc!Pw42", "Netrc!Pw42",
       keep=("machine api.example.test login deploy password",)),
    _c("pgpass", "```\ndb.example.test:5432:app:app_user:PgPass!File9\n```", "PgPass!File9",
       keep=("db.example.test:5432:app:app_user:",)),
    _c("sqlserver-conn", "Server=db;Database=app;User Id=sa;Password=Str0ng!Pass;", "Str0ng!Pass",
       keep=("User Id=sa",)),
    _c("jdbc-query", "jdbc:mysql://db:3306/app?user=root&password=Jdbc!Pw1", "Jdbc!Pw1"),
    _c("odbc", "Driver={ODBC};Uid=app;Pwd=Odbc!Pw77;", "Odbc!Pw77"),
    _c("spring-properties", "spring.datasource.password=Spring!Pw5", "Spring!Pw5"),
    _c("xml-element", "<password>XmlPass!9</password>", "XmlPass!9", keep=("<password>", "</password>")),
    _c("terraform", 'password = "Terraform!Pw3"', "Terraform!Pw3"),
    _c("compose-env-list", "environment:\n  - POSTGRES_PASSWORD=Compose!Pw8", "Compose!Pw8"),
    _c("k8s-stringdata", "stringData:\n  password: K8sSecret!4", "K8sSecret!4"),
    _c("k8s-data-base64", "data:\n  password: cGFzc3dvcmQxMjM0NQ==", "cGFzc3dvcmQxMjM0NQ=="),
    _c("kubectl-token", "kubectl --token=eyKubeTok3nValue99 get pods", "eyKubeTok3nValue99"),
    _c("gitlab-private-token-header",
       'curl -H "PRIVATE-TOKEN: glTok3nValue1234abcd" https://gitlab.example.test/api/v4/projects',
       "glTok3nValue1234abcd"),
    _c("aws-configure-set", f"aws configure set aws_secret_access_key {AWS_SECRET}", AWS_SECRET),
    _c("pip-index-url", "pip install --index-url https://ci:PipIdx!Pw2@pypi.example.test/simple app", "PipIdx!Pw2"),
    _c("wpa-key", "- WPA key: Wifi!Guest2024", "Wifi!Guest2024"),
    _c("passphrase", "- passphrase: correct-horse-battery-staple-42", "correct-horse-battery-staple-42"),
    _c("recovery-codes", "- Recovery codes: 8f2k-9d3m, 7h1q-2w4e", "8f2k-9d3m", "7h1q-2w4e",
       keep=("Recovery codes:",)),
]


# --- look-alikes: every one of these must come back unchanged --------------------------------
LOOKALIKES: list[str] = [
    # hashes in lockfiles and checksums
    '"integrity": "sha512-' + _r(86, _B64, "int1") + '=="',
    "  integrity sha512-" + _r(86, _B64, "int2") + "==",
    '  resolved "https://registry.yarnpkg.com/lodash/-/lodash-4.17.21.tgz#' + _r(40, _HEX, "yarn") + '"',
    'hash = "sha256:' + _r(64, _HEX, "poetry") + '"',
    "    --hash=sha256:" + _r(64, _HEX, "pip"),
    "golang.org/x/text v0.3.7 h1:" + _r(43, _B64, "gosum") + "=",
    "sha256sum: " + _r(64, _HEX, "sum") + "  dist/app.tar.gz",
    "- image digest: ghcr.io/org/app@sha256:" + _r(64, _HEX, "digest"),
    "- md5 of the fixture: " + _r(32, _HEX, "md5"),
    "checksum: " + _r(64, _HEX, "checksum"),
    # git and ids
    "- Fixed in commit " + _r(40, _HEX, "git") + " (see the changelog).",
    "- Revert " + _r(7, _HEX, "short") + " if the build breaks.",
    "- Tenant id in docs: 123e4567-e89b-12d3-a456-426614174000",
    "- Use trace id `4bf92f3577b34da6a3ce929d0e0e4736` in examples.",
    # password/token followed by prose
    "- password: must be at least 12 characters",
    "- Password: hashed with argon2id before storage",
    "- password: required for every service account",
    "- Passwort: mindestens zwölf Zeichen, nie im Klartext speichern",
    "- mot de passe : jamais dans le dépôt",
    "- The API token is opaque; never decode it.",
    "- Tokens expire after 3600 seconds.",
    "- Use the password manager (1Password) for every shared login.",
    "- Password reset links are valid for 15 minutes.",
    "- Rotate the admin password every 90 days.",
    "- Never use password123 or similar in fixtures.",
    "- Login admin / staff roles are described in docs/roles.md",
    "- pass --verbose to see more output",
    "- Tests pass: 412 / 412 on main.",
    # placeholders and references
    "API_KEY=<your-api-key>",
    "- password: <your-password>",
    "DB_PASSWORD=${DB_PASSWORD}",
    "- Use `$DB_PASSWORD` from the vault, never a literal.",
    "password: $PASSWORD",
    "- secret: ****",
    "- token: xxxxxxxx",
    'REDISCLI_AUTH="${REDIS_AUTH}" redis-cli ping',
    "psql \"postgres://app:${DB_PASSWORD:-}@localhost/app\"",
    "DB_URL=${DATABASE_URL:-postgres://localhost:5432/app}",
    "PORT=${PORT:-8080}",
    "| User | Password |\n|---|---|\n| admin | `$ADMIN_PASSWORD` |\n| qa | (from vault) |",
    "| Field | Type | Notes |\n|---|---|---|\n| password | string | bcrypt hash |\n| token | string | opaque |",
    "secret_key = os.environ['SECRET_KEY']",
    "- api_key: os.getenv('API_KEY')",
    "GH_TOKEN: ${{ secrets.GITHUB_TOKEN }}",
    'password: "{{ vault_db_password }}"',
    "docker login -u deployer --password-stdin < token.txt",
    # versions, ports, paths, flags that are not passwords
    "- Node v22.11.0, pnpm 9.12.3, Python 3.12.7",
    "- Postgres listens on port 5432; Redis on 6380.",
    "docker run -p 8080:80 -p 5432:5432 nginx:1.27",
    "- ssh_key: ~/.ssh/id_ed25519",
    "- key_file: /etc/ssl/private/server.key",
    "- The `key` prop must be unique; primary key: id",
    "- Cache key format: user:{id}:profile",
    "---\ndescription: Rules for the auth module\nglobs: [\"src/auth/**\"]\nalwaysApply: false\n---\n- Passwords are hashed with bcrypt (cost 12).",
    "```yaml\nauth:\n  provider: oidc\n  token_ttl: 3600\n```",
    "<!-- TODO: document the token refresh flow -->",
    "- psql -h db -p 5432 -U app",
    "- Base64 of the logo lives in assets/logo.b64 (do not inline it).",
    # prose about credentials, in several languages
    "- La contraseña: debe tener al menos 12 caracteres",
    "- Senha: nunca salvar no repositório",
    "- Пароль: хранится в vault",
    "- Mot de passe oublié : lien valable 15 minutes",
    "- password must be rotated; see `docs/rotation.md`",
    "- Use `--password-stdin` with docker login.",
    "- Set `PGPASSWORD` in your shell, never in scripts.",
    "- The token endpoint is /oauth/token.",
    "- password hashing: argon2id (m=64MiB, t=3, p=4)",
    "- Passwords: min 12 chars, 1 digit, 1 symbol",
    "Login: use SSO via Okta / Google",
    "- `user / password` fields are required on the login form",
    "- SSH into the box with `ssh deploy@10.0.0.5` (key auth only)",
    "| Setting | Value |\n|---|---|\n| password_min_length | 12 |\n| token_ttl | 3600 |",
    "| Name | Secret |\n|---|---|\n| DB | stored in Vault at kv/app/db |\n| Stripe | `$STRIPE_KEY` |",
    "root:x:0:0:root:/root:/bin/bash",
    "- Meeting at 10:30:00 in room 4",
    "<timeout>30</timeout> and <token_ttl>3600</token_ttl>",
]
