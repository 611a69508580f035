"""The web portal's files from web/: real files as they are, every other page path the app shell."""

from __future__ import annotations

import mimetypes
import posixpath
from pathlib import Path

from werkzeug.wrappers import Request, Response

from services.gateway.problems import Problem
from services.gateway.settings import Settings

TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
    ".webmanifest": "application/manifest+json",
}


PLACEHOLDER = (
    "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>muniportal</title>"
    "</head><body><main><h1>muniportal</h1><p>The web portal is not installed; the API is "
    "at <a href='/api/v1/openapi.json'>/api/v1/openapi.json</a>.</p></main></body></html>"
)


def serve(request: Request, settings: Settings) -> Response:
    if request.method not in ("GET", "HEAD"):
        raise Problem(
            405,
            f"{request.method} is not allowed here (allowed: GET, HEAD).",
            headers={"Allow": "GET, HEAD"},
        )
    root = settings.web_dir.resolve()
    relative = posixpath.normpath(request.path).lstrip("/")
    looks_like_file = relative.startswith("static/") or "." in relative.rsplit("/", 1)[-1]
    if looks_like_file:
        target = (root / relative).resolve()
        if not _inside(target, root) or not target.is_file():
            raise Problem(404, f"There is no file {request.path}.", code="file_not_found")
        return _file(request, target, cache="public, max-age=3600")
    index = root / "index.html"
    if not index.is_file():
        # Before the portal's pages are installed, the shell still answers.
        return Response(
            PLACEHOLDER, content_type=TYPES[".html"], headers={"Cache-Control": "no-cache"}
        )
    return _file(request, index, cache="no-cache")


def _inside(target: Path, root: Path) -> bool:
    return target == root or root in target.parents


def _file(request: Request, path: Path, cache: str) -> Response:
    content_type = TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0]
    stat = path.stat()
    etag = f'"{int(stat.st_mtime)}-{stat.st_size}"'
    headers = {"Cache-Control": cache, "ETag": etag}
    if request.headers.get("If-None-Match") == etag:
        return Response(status=304, headers=headers)
    body = b"" if request.method == "HEAD" else path.read_bytes()
    response = Response(
        body, content_type=content_type or "application/octet-stream", headers=headers
    )
    if request.method == "HEAD":
        response.headers["Content-Length"] = str(stat.st_size)
    return response
