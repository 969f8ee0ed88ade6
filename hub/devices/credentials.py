"""State-DB table of MQTT credentials: one row per device or hub user, only a PBKDF2 hash is stored."""

from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base


class MqttCredentialRow(Base):
    """An MQTT user: a device (bound to its site and topics) or a hub (full access under the root)."""

    __tablename__ = "mqtt_credentials"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # device | hub
    site: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: Mosquitto 2 PBKDF2-SHA512 form ``$7$<iterations>$<salt b64>$<hash b64>``; the password is never stored.
    password_hash: Mapped[str] = mapped_column(String(200))
    created_ms: Mapped[int] = mapped_column(BigInteger)
    revoked_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
