"""Configuration from the environment, with local defaults (see .env.example)."""
import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_SECRETS = {
    "ADMIN_API_KEY": "dev-admin-key",
    "TWILIO_AUTH_TOKEN": "dev-twilio-token",
    "SECRET_KEY": "dev-secret-key",
    "CONSOLE_PASSWORD": "dev-console-password",
}


def _load_dotenv() -> None:
    """Read KEY=VALUE lines from .env without overriding the real environment."""
    path = ROOT / ".env"
    if not path.exists():
        return
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            os.environ.setdefault(key.strip(), value.strip())


@dataclass(frozen=True)
class Settings:
    environment: str
    database_url: str
    public_base_url: str
    twilio_account_sid: str
    twilio_auth_token: str
    twilio_phone_number: str
    twilio_api_base_url: str
    admin_api_key: str
    secret_key: str
    # The key of the date-of-birth hash (kindly/privacy.py); locally, when unset, a random one made in the file.
    dob_hash_key: str
    dob_hash_key_file: Path
    console_password: str
    bank_name: str
    bank_name_zh: str
    contact_person: str
    contact_person_zh: str
    callback_number: str
    rasa_urls: tuple[str, ...]
    agent_line: str
    sms_inactivity_hours: int
    # How `make run` lays the system out: "local" (SQLite, one engine) or "production" (PostgreSQL, Redis,
    # several engines and gateway workers); see the README's production profile.
    profile: str
    engine_instances: int
    gateway_workers: int
    redis_url: str

    def bank_name_in(self, language: str) -> str:
        return self.bank_name_zh if language == "zh" else self.bank_name

    def contact_person_in(self, language: str) -> str:
        return self.contact_person_zh if language == "zh" else self.contact_person

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    def check_production_secrets(self) -> None:
        """Production refuses to start on the local default secrets."""
        if not self.is_production:
            return
        weak = [name for name, default in DEFAULT_SECRETS.items() if getattr(self, name.lower()) == default]
        if not self.dob_hash_key:
            weak.append("DOB_HASH_KEY (unset)")
        if weak:
            raise RuntimeError(f"refusing to start in production with default secrets: {', '.join(weak)}")


def load_settings() -> Settings:
    _load_dotenv()
    env = os.environ.get
    return Settings(
        environment=env("KINDLY_ENV", "development"),
        database_url=env("DATABASE_URL", f"sqlite:///{ROOT / 'var' / 'kindly.db'}"),
        public_base_url=env("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/"),
        twilio_account_sid=env("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000000"),
        twilio_auth_token=env("TWILIO_AUTH_TOKEN", DEFAULT_SECRETS["TWILIO_AUTH_TOKEN"]),
        twilio_phone_number=env("TWILIO_PHONE_NUMBER", "+15005550006"),
        twilio_api_base_url=env("TWILIO_API_BASE_URL", "https://api.twilio.com").rstrip("/"),
        admin_api_key=env("ADMIN_API_KEY", DEFAULT_SECRETS["ADMIN_API_KEY"]),
        secret_key=env("SECRET_KEY", DEFAULT_SECRETS["SECRET_KEY"]),
        dob_hash_key=env("DOB_HASH_KEY", ""),
        dob_hash_key_file=ROOT / "var" / "dob-hash.key",
        console_password=env("CONSOLE_PASSWORD", DEFAULT_SECRETS["CONSOLE_PASSWORD"]),
        bank_name=env("BANK_NAME", "Harbor Bank"),
        # The Mandarin voice reads an English name letter by letter or in English: give the bank's Chinese name.
        bank_name_zh=env("BANK_NAME_ZH", "海港银行"),
        # The natural person a limited-content voicemail names (12 CFR 1006.2(j)): a real colleague in production.
        contact_person=env("CONTACT_PERSON", "Casey Brooks"),
        contact_person_zh=env("CONTACT_PERSON_ZH", "李文"),
        callback_number=env("CALLBACK_NUMBER", "+18005550199"),
        # Several engines, comma-separated: any of them serves any conversation (the tracker store is shared).
        rasa_urls=tuple(url.strip().rstrip("/") for url in env("RASA_URL", "http://127.0.0.1:5005").split(",") if url.strip()),
        agent_line=env("AGENT_LINE", "+15005550100"),
        sms_inactivity_hours=int(env("SMS_INACTIVITY_HOURS", "24")),
        profile=env("KINDLY_PROFILE", "local"),
        # The production profile runs two of each by default (this machine has two cores).
        engine_instances=int(env("ENGINE_INSTANCES", "2" if env("KINDLY_PROFILE") == "production" else "1")),
        gateway_workers=int(env("GATEWAY_WORKERS", "2" if env("KINDLY_PROFILE") == "production" else "1")),
        redis_url=env("REDIS_URL", "redis://127.0.0.1:6379/1"),
    )


settings = load_settings()
