"""Connecting through Temporal's environment configuration (profiles, API key, mTLS).

The mapping from profile file and environment to `Client.connect` arguments,
and a real run: the worker connects through an mTLS profile to a server that
refuses clients without a certificate (the dev server behind a local
TLS-terminating proxy that requires one) and hands off an account.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ssl
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from temporalio.service import TLSConfig
from temporalio.testing import WorkflowEnvironment

from cli.accounts import start_account
from stack.connect import ConnectConfigError, connect, target
from stack.settings import load_settings
from tests.workflows.helpers import make_handoff, running_worker, settings_for_test

PROFILES = """
[profile.cloud]
address = "vim-prod.a1b2c.tmprl.cloud:7233"
namespace = "vim-prod.a1b2c"
api_key = "the-api-key"

[profile.mtls]
address = "temporal.internal:7233"
namespace = "customer-success"
[profile.mtls.tls]
server_name = "temporal.internal"
server_ca_cert_path = "{dir}/ca.pem"
client_cert_path = "{dir}/client.pem"
client_key_path = "{dir}/client.key"
"""


def _settings(tmp_path: Path):
    return load_settings({"VIM_DATA_DIR": str(tmp_path)})


def test_no_profile_keeps_the_embedded_defaults(tmp_path: Path) -> None:
    t = target(_settings(tmp_path), env={})
    assert dict(t.kwargs) == {"target_host": "localhost:7233", "namespace": "default"}


def test_cloud_profile_maps_to_an_api_key_over_tls(tmp_path: Path) -> None:
    (tmp_path / "temporal.toml").write_text(PROFILES.format(dir=tmp_path))
    env = {"TEMPORAL_CONFIG_FILE": str(tmp_path / "temporal.toml"), "TEMPORAL_PROFILE": "cloud"}
    t = target(_settings(tmp_path), env=env)
    assert t.address == "vim-prod.a1b2c.tmprl.cloud:7233"
    assert t.namespace == "vim-prod.a1b2c"
    assert t.kwargs["api_key"] == "the-api-key" and t.kwargs["tls"] is True
    assert "the-api-key" not in t.describe() and "API key" in t.describe()


def test_mtls_profile_reads_certificates_and_env_overrides_the_file(tmp_path: Path) -> None:
    for name in ("ca.pem", "client.pem", "client.key"):
        (tmp_path / name).write_text(f"-----{name}-----")
    (tmp_path / "temporal.toml").write_text(PROFILES.format(dir=tmp_path))
    env = {
        "TEMPORAL_CONFIG_FILE": str(tmp_path / "temporal.toml"),
        "TEMPORAL_PROFILE": "mtls",
        "TEMPORAL_NAMESPACE": "cs-staging",
    }
    t = target(_settings(tmp_path), env=env)
    tls = t.kwargs["tls"]
    assert isinstance(tls, TLSConfig)
    assert (tls.client_cert, tls.client_private_key) == (
        b"-----client.pem-----",
        b"-----client.key-----",
    )
    assert tls.server_root_ca_cert == b"-----ca.pem-----" and tls.domain == "temporal.internal"
    assert (t.address, t.namespace) == ("temporal.internal:7233", "cs-staging")
    assert "client certificate" in t.describe()


def test_a_missing_profile_or_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "temporal.toml").write_text(PROFILES.format(dir=tmp_path))
    with pytest.raises(ConnectConfigError, match="'staging' not found"):
        target(
            _settings(tmp_path),
            env={
                "TEMPORAL_CONFIG_FILE": str(tmp_path / "temporal.toml"),
                "TEMPORAL_PROFILE": "staging",
            },
        )
    with pytest.raises(ConnectConfigError, match="does not exist"):
        target(_settings(tmp_path), env={"TEMPORAL_CONFIG_FILE": str(tmp_path / "nope.toml")})


# ------------------------------------------------------------------ real mTLS


def _pem(obj) -> bytes:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _issue(name: str, issuer=None, issuer_key=None, *, ca: bool = False, server: bool = False):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
    return b.sign(issuer_key or key, hashes.SHA256()), key


def _write_pki(d: Path) -> None:
    ca, ca_key = _issue("vim test CA", ca=True)
    srv, srv_key = _issue("localhost", ca, ca_key, server=True)
    cli, cli_key = _issue("vim-worker", ca, ca_key)
    for name, obj in {
        "ca.pem": ca,
        "server.pem": srv,
        "server.key": srv_key,
        "client.pem": cli,
        "client.key": cli_key,
    }.items():
        (d / name).write_bytes(_pem(obj))


@contextlib.asynccontextmanager
async def _mtls_proxy(upstream: str, d: Path) -> AsyncIterator[int]:
    """TLS (client certificate required, ALPN h2) in front of the dev server's plain gRPC port."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "server.pem", d / "server.key")
    ctx.load_verify_locations(d / "ca.pem")
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_alpn_protocols(["h2"])
    host, _, port = upstream.rpartition(":")
    tasks: set[asyncio.Task] = set()

    async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        with contextlib.suppress(Exception):
            w.close()

    async def handle(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        ur, uw = await asyncio.open_connection(host, int(port))
        for t in (asyncio.create_task(pipe(cr, uw)), asyncio.create_task(pipe(ur, cw))):
            tasks.add(t)
            t.add_done_callback(tasks.discard)

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for t in list(tasks):
            t.cancel()


@pytest.mark.devserver
@pytest.mark.slow
async def test_worker_connects_through_an_mtls_profile_and_runs_an_account(
    dev_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    _write_pki(tmp_path)
    upstream = dev_env.client.service_client.config.target_host
    async with _mtls_proxy(upstream, tmp_path) as port:
        (tmp_path / "temporal.toml").write_text(
            PROFILES.format(dir=tmp_path)
            .replace("temporal.internal:7233", f"localhost:{port}")
            .replace('server_name = "temporal.internal"', 'server_name = "localhost"')
            .replace('"customer-success"', f'"{dev_env.client.namespace}"')
        )
        env = {"TEMPORAL_CONFIG_FILE": str(tmp_path / "temporal.toml"), "TEMPORAL_PROFILE": "mtls"}
        settings = settings_for_test(tmp_path)

        # Without a client certificate the server refuses the connection.
        stripped = (tmp_path / "temporal.toml").read_text()
        (tmp_path / "nocert.toml").write_text(
            "\n".join(line for line in stripped.splitlines() if "client_" not in line)
        )
        with pytest.raises(RuntimeError):
            await asyncio.wait_for(
                connect(
                    settings, env={**env, "TEMPORAL_CONFIG_FILE": str(tmp_path / "nocert.toml")}
                ),
                30,
            )

        client = await connect(settings, env=env)
        h = make_handoff(f"mtls-{uuid.uuid4().hex[:6]}", dt.datetime.now(dt.UTC).date())
        async with running_worker(client, db_dsn, settings) as pool:
            await start_account(client, h, settings)
            for _ in range(200):
                if await pool.fetchval(
                    "SELECT count(*) FROM health_snapshots WHERE account_id = $1", h.account_id
                ):
                    break
                await asyncio.sleep(0.3)
            else:
                raise AssertionError("no health snapshot through the mTLS connection")
