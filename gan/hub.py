"""Hugging Face Hub transport for model folders: push a finished folder, and pick the model the app loads.

    fashion-gan push runs/fashion-mnist me/fashion-gan [--private] [--revision BRANCH]   # (gan.cli)
    fashion-gan resolve [--repo me/fashion-gan] [--revision main] [--local-dir DIR]

push_space uploads a folder staged by gan.space (`fashion-gan space OWNER/NAME`) to a Gradio Space.

Push uploads only the GAN's own files (config.json, *.safetensors, README.md, images, *.json,
metrics.jsonl); training checkpoints (ckpts/), progress frames (progress/) and best/ stay local, and so do
a metric classifier or reference cache that an older folder may still hold (they ship with the package,
in gan/assets/classifier/).  The token comes from the argument, else HF_TOKEN, else the ``hf auth login``
cache; it is never printed.

The app's model, in order: GAN_MODEL_DIR (a local folder); else GAN_MODEL_REPO (+ GAN_MODEL_REVISION)
through the Hub client's cache (an unreachable Hub uses the cached snapshot, else falls back); else the
embedded checkpoints/ folder. A quick probe (HF_HUB_ETAG_TIMEOUT seconds, default 5) keeps an
unreachable Hub from stalling app start.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal

from .pretrained import DISCRIMINATOR_FILE, GENERATOR_FILE, GAN, ModelFormatError

# the shipped model: checkpoints/ beside the package in a checkout, else the copy installed with it
_CHECKOUT_MODEL = Path(__file__).resolve().parent.parent / "checkpoints"
EMBEDDED_DIR = (_CHECKOUT_MODEL if (_CHECKOUT_MODEL / "config.json").is_file()
                else Path(__file__).resolve().parent / "checkpoints")
MODEL_FILES = ("config.json", GENERATOR_FILE, DISCRIMINATOR_FILE)
# what goes to the Hub: top-level artifacts only ("*/*" drops ckpts/, progress/, best/ and any other subfolder)
UPLOAD_PATTERNS = ["config.json", "*.safetensors", "README.md", "*.png", "*.gif", "*.json", "metrics.jsonl"]
# never the metric classifier or its reference statistics (gan/assets/classifier/; older folders held them)
UPLOAD_IGNORE = ["*/*", ".*", "*.tmp", "classifier.safetensors", "classifier.json", "metric_references.json"]
# what the app downloads (never *.bin / *.pt / *.pkl: nothing that could be unpickled)
DOWNLOAD_PATTERNS = ["*.json", "*.safetensors", "*.md", "*.png", "*.gif", "*.jsonl"]
# a staged Space needs these; an upload replaces the code and model folders it holds (stale files go)
SPACE_FILES = ("README.md", "app.py", "requirements.txt")
SPACE_DELETE = ["gan/*", "checkpoints/*", "assets/*"]
DEFAULT_PROBE_TIMEOUT_S = 5.0
NO_TOKEN = "no Hugging Face token: set HF_TOKEN or run `hf auth login`"

log = logging.getLogger(__name__)


class PushError(RuntimeError):
    """A model folder could not be pushed to the Hub (no token, bad folder or repo id, network, refusal)."""


@dataclass(frozen=True)
class ModelSource:
    """Where the app's model comes from, and why (``warning`` says what went wrong with the preferred source)."""

    folder: Path
    kind: Literal["hub", "local", "embedded"]
    description: str
    warning: str | None = None


# ---- checks ---------------------------------------------------------------------------------------
def check_repo_id(repo_id: str) -> str:
    """Return repo_id if it is a valid OWNER/NAME (huggingface_hub's validate_repo_id), else raise ValueError."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id
    if not isinstance(repo_id, str) or repo_id.count("/") != 1:
        reason = "one '/' between owner and name; letters, digits, '-', '_', '.'"
    else:
        try:
            validate_repo_id(repo_id)
            return repo_id
        except HFValidationError as e:  # its message ends with the id itself: keep the rule only
            reason = str(e).strip().splitlines()[0].rsplit(": '", 1)[0].rstrip(".")
    raise ValueError(f"repo id {repo_id!r} is not of the form OWNER/NAME ({reason}; e.g. me/fashion-gan)")


def missing_model_files(folder: str | Path) -> list[str]:
    """The files a finished model folder needs that folder lacks (all of them if it is not a folder)."""
    folder = Path(folder)
    return [name for name in MODEL_FILES if not (folder / name).is_file()]


# ---- push -----------------------------------------------------------------------------------------
def push_folder(folder: Path | str, repo_id: str, *, private: bool | None = False, revision: str | None = None,
                token: str | None = None, commit_message: str | None = None, create_pr: bool = False,
                delete_patterns: list[str] | str | None = None) -> str:
    """Upload a finished model folder to the Hub repo repo_id (created if needed); return the repo (or PR) URL."""
    from huggingface_hub import HfApi

    folder = Path(folder)
    missing = missing_model_files(folder)
    if missing:
        raise PushError(f"{folder} is not a finished model folder (missing {', '.join(missing)}); "
                        f"train one with: python train.py --out {folder}")
    try:
        check_repo_id(repo_id)
    except ValueError as e:
        raise PushError(f"{e}; the model is saved locally in {folder}") from None
    later = f"fashion-gan push {folder} {repo_id}" + (" --private" if private else "") + \
        (f" --revision {revision}" if revision else "")
    saved = f"the model is saved locally in {folder}; push it later with: {later}"
    token = token or _cached_token()
    if not token:
        raise PushError(f"{NO_TOKEN}; {saved}")
    api = HfApi(token=token)
    with _translated_errors(repo_id, token, saved):
        _probe(api, repo_id, None, _probe_timeout())
        url = api.create_repo(repo_id, private=private, exist_ok=True)
        if revision:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        commit = api.upload_folder(repo_id=repo_id, folder_path=folder, revision=revision,
                                   allow_patterns=UPLOAD_PATTERNS, ignore_patterns=UPLOAD_IGNORE,
                                   delete_patterns=delete_patterns, create_pr=create_pr,
                                   commit_message=commit_message or f"Upload GAN model folder {folder.name}")
    pr_url = getattr(commit, "pr_url", None) if create_pr else None
    return str(pr_url) if pr_url else str(url) + (f"/tree/{revision}" if revision else "")


def push_space(folder: Path | str, repo_id: str, *, private: bool | None = False, token: str | None = None,
               hardware: str | None = None, later: str | None = None) -> str:
    """Upload a staged Space folder (app.py, README.md with front matter, ...) to the Gradio Space repo_id."""
    from huggingface_hub import HfApi
    folder = Path(folder)
    missing = [f for f in SPACE_FILES if not (folder / f).is_file()]
    if missing:
        raise PushError(f"{folder} is not a staged Space (missing {', '.join(missing)}); stage one with: "
                        f"fashion-gan space {repo_id} --dry-run --out {folder}")
    try:
        check_repo_id(repo_id)
    except ValueError as e:
        raise PushError(str(e)) from None
    saved = f"the Space is staged in {folder}" + (f"; upload it later with: {later}" if later else "")
    token = token or _cached_token()
    if not token:
        raise PushError(f"{NO_TOKEN}; {saved}")
    api = HfApi(token=token)
    with _translated_errors(repo_id, token, saved):
        _probe(api, repo_id, None, _probe_timeout(), repo_type="space")
        url = api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True,
                              space_hardware=hardware)
        api.upload_folder(repo_id=repo_id, repo_type="space", folder_path=folder, delete_patterns=SPACE_DELETE,
                          commit_message=f"Deploy the Fashion-MNIST GAN app ({folder.name})")
    return str(url)


@contextmanager
def _translated_errors(repo_id: str, token: str, saved: str) -> Iterator[None]:
    """Hub failures inside the block become one PushError line that never shows the token."""
    from huggingface_hub import constants
    from huggingface_hub.errors import HfHubHTTPError
    try:
        yield
    except _network_errors() as e:
        where = "" if constants.ENDPOINT.rstrip("/") == "https://huggingface.co" else f" at {constants.ENDPOINT}"
        msg = f"could not reach the Hugging Face Hub{where} ({_reason(e)}); {saved}"
        raise PushError(_redact(msg, token)) from None
    except HfHubHTTPError as e:
        status = getattr(getattr(e, "response", None), "status_code", None)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if status in (401, 403):
            msg = (f"the Hugging Face Hub refused the token for {repo_id} (HTTP {status}): use a token with write "
                   f"access (HF_TOKEN or `hf auth login`); {saved}")
        else:
            msg = f"the Hugging Face Hub rejected the push to {repo_id} ({first[:300]}); {saved}"
        raise PushError(_redact(msg, token)) from None


def has_token() -> bool:
    """Whether a Hub token is available (HF_TOKEN or the `hf auth login` cache), without revealing it."""
    try:
        return bool(_cached_token())
    except PushError:
        return False


def _cached_token() -> str | None:
    """HF_TOKEN, else the `hf auth login` cache (huggingface_hub's own lookup)."""
    from huggingface_hub import get_token
    try:
        return get_token()
    except Exception as e:  # e.g. an OIDC exchange that fails: report it without any secret
        raise PushError(f"could not read the Hugging Face token ({type(e).__name__}); set HF_TOKEN") from None


def _redact(msg: str, token: str | None) -> str:
    return msg.replace(token, "***") if token else msg


# ---- resolve / load (the app) ---------------------------------------------------------------------
def resolve_model(repo: str | None = None, revision: str | None = None, local_dir: str | None = None, *,
                  fallback: Path = EMBEDDED_DIR, timeout: float | None = None) -> ModelSource:
    """Pick the model folder: local_dir if given, else the Hub repo (cached snapshot), else fallback."""
    if local_dir:
        folder = Path(local_dir).expanduser().resolve()
        return ModelSource(folder, "local", f"local folder {folder}")
    fallback = Path(fallback)
    if not repo:
        return ModelSource(fallback, "embedded", f"embedded {_show(fallback)}/ (offline default)")
    rev = revision or "main"
    try:
        folder, how, warning = _fetch_snapshot(repo, revision, _probe_timeout() if timeout is None else timeout)
    except Exception as e:  # any Hub problem: the app still starts, on the embedded model
        return ModelSource(fallback, "embedded", f"embedded {_show(fallback)}/ (fallback)",
                           f"could not load Hub repo {repo}@{rev} ({_reason(e)}); using the embedded model")
    missing = missing_model_files(folder)
    if missing:
        return ModelSource(fallback, "embedded", f"embedded {_show(fallback)}/ (fallback)",
                           f"Hub repo {repo}@{rev} is not a model folder (missing {', '.join(missing)}); "
                           f"using the embedded model")
    return ModelSource(folder, "hub", f"Hub repo {repo}@{rev} ({how} {folder.name[:12]})", warning)


def source_from_env(*, fallback: Path = EMBEDDED_DIR) -> ModelSource:
    """resolve_model from GAN_MODEL_DIR, GAN_MODEL_REPO and GAN_MODEL_REVISION."""
    env = os.environ
    return resolve_model(env.get("GAN_MODEL_REPO") or None, env.get("GAN_MODEL_REVISION") or None,
                         env.get("GAN_MODEL_DIR") or None, fallback=fallback)


def load_model(repo: str | None = None, revision: str | None = None, local_dir: str | None = None, *,
               fallback: Path = EMBEDDED_DIR, source: ModelSource | None = None) -> tuple[GAN, ModelSource]:
    """Resolve (or take `source`) and load the model; a broken Hub snapshot falls back to `fallback`."""
    source = source or resolve_model(repo, revision, local_dir, fallback=fallback)
    try:
        model = load_folder(source.folder)
    except ModelFormatError as e:
        if source.kind != "hub":
            raise
        source = ModelSource(Path(fallback), "embedded", f"embedded {_show(Path(fallback))}/ (fallback)",
                             f"{source.description} could not be loaded ({e}); using the embedded model")
        model = load_folder(source.folder)
    if source.warning:
        log.warning(source.warning)
    return model, source


def load_from_env(*, fallback: Path = EMBEDDED_DIR) -> tuple[GAN, ModelSource]:
    """load_model with the GAN_MODEL_DIR / GAN_MODEL_REPO / GAN_MODEL_REVISION settings."""
    return load_model(fallback=fallback, source=source_from_env(fallback=fallback))


def load_pretrained(spec: str) -> GAN:
    """A GAN from a model folder or a Hub id (owner/name), with a one-line ModelFormatError when neither works."""
    if os.path.isdir(spec):
        return load_folder(spec)
    try:
        check_repo_id(spec)
        is_repo = not os.path.isdir(os.path.dirname(spec))  # a path whose folder exists here is not a Hub id
    except ValueError:
        is_repo = False
    if not is_repo:
        raise ModelFormatError(f"{spec}: no such model folder (and not a Hub id of the form owner/name)")
    try:
        return GAN.from_pretrained(spec)
    except ModelFormatError:
        raise
    except Exception as e:  # the Hub client raises many types (offline, 404, gated, ...)
        raise ModelFormatError(f"{spec}: not a local folder, and loading it from the Hugging Face Hub "
                               f"failed ({type(e).__name__}: {str(e).splitlines()[0][:160]})") from None


def load_folder(folder: str | Path) -> GAN:
    """Load a local model folder, with a clear ModelFormatError if it is not one."""
    folder = Path(folder).resolve()
    missing = missing_model_files(folder)
    if len(missing) == len(MODEL_FILES):
        raise ModelFormatError(f"{folder} is not a model folder (it needs {', '.join(MODEL_FILES)}); train one with "
                               f"python train.py --out {folder}, or set GAN_MODEL_REPO to a Hub repo")
    if "config.json" in missing:
        raise ModelFormatError(f"config.json is missing from {folder}")
    return GAN.from_pretrained(str(folder))


def _fetch_snapshot(repo: str, revision: str | None, timeout: float) -> tuple[Path, str, str | None]:
    """(snapshot folder, 'snapshot' | 'cached snapshot', warning); raises if neither the Hub nor the cache has it."""
    from huggingface_hub import HfApi, constants, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    check_repo_id(repo)
    try:
        _probe(HfApi(), repo, revision, timeout)
        probe_error = None
    except (RepositoryNotFoundError, RevisionNotFoundError):
        raise
    except (*_network_errors(), HfHubHTTPError) as e:
        probe_error = e
    if probe_error is None:
        folder = snapshot_download(repo, revision=revision, allow_patterns=DOWNLOAD_PATTERNS, etag_timeout=timeout)
        return Path(folder), "snapshot", None
    try:
        folder = snapshot_download(repo, revision=revision, allow_patterns=DOWNLOAD_PATTERNS, local_files_only=True)
    except Exception:
        raise probe_error from None
    offline = constants.is_offline_mode()
    warning = None if offline else f"the Hub is unreachable ({_reason(probe_error)}); using the cached snapshot"
    return Path(folder), "cached snapshot" + (", offline mode" if offline else ""), warning


def _probe(api, repo_id: str, revision: str | None, timeout: float, repo_type: str | None = None) -> None:
    """One metadata request with a short timeout, so an unreachable Hub fails fast (snapshot_download has none)."""
    from huggingface_hub.errors import RepositoryNotFoundError
    try:
        api.repo_info(repo_id, revision=revision, timeout=timeout, repo_type=repo_type)
    except RepositoryNotFoundError:
        if revision is None and api.token is not None:  # pushing to a new repo: the Hub answered, that is enough
            return
        raise


def _probe_timeout() -> float:
    try:
        return float(os.environ.get("HF_HUB_ETAG_TIMEOUT") or DEFAULT_PROBE_TIMEOUT_S)
    except ValueError:
        return DEFAULT_PROBE_TIMEOUT_S


def _network_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean 'the Hub could not be reached' (across huggingface_hub's HTTP backends)."""
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled
    errors: list[type[BaseException]] = [OfflineModeIsEnabled, LocalEntryNotFoundError, ConnectionError, TimeoutError]
    for mod, names in (("httpx2", ("TransportError",)), ("httpx", ("TransportError",)),
                       ("requests", ("ConnectionError", "Timeout"))):
        module = sys.modules.get(mod)
        for name in names:
            exc = getattr(module, name, None) if module else None
            if isinstance(exc, type) and issubclass(exc, BaseException):
                errors.append(exc)
    return tuple(errors)


def _reason(e: BaseException) -> str:
    """A short, single-line reason for a Hub failure."""
    from huggingface_hub.errors import OfflineModeIsEnabled, RepositoryNotFoundError, RevisionNotFoundError
    if isinstance(e, OfflineModeIsEnabled) or (e.__cause__ and isinstance(e.__cause__, OfflineModeIsEnabled)):
        return "offline mode: HF_HUB_OFFLINE is set"
    if isinstance(e, RevisionNotFoundError):
        return "revision not found"
    if isinstance(e, RepositoryNotFoundError):
        return "repo not found, or private and no valid token"
    if isinstance(e, ValueError):
        return str(e)
    name = type(e).__name__
    if "Timeout" in name or isinstance(e, TimeoutError):
        return f"timed out ({name})"
    text = str(e).strip().splitlines()
    text = text[0] if text else ""
    return f"{name}: {text[:160]}" if text else name


def _show(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(EMBEDDED_DIR.parent))
    except ValueError:
        return str(path)
