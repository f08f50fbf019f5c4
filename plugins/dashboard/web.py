"""The dashboard's pages: login, the figures, one turn in full. Server-rendered HTML in which
every value is escaped; no script at all, so the page's policy allows none."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import datetime, timezone
from html import escape
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from botkit import hookimpl
from botkit_plugins.dashboard import DashboardConfig
from botkit_plugins.dashboard.figures import RECENT, WINDOWS, figures

if TYPE_CHECKING:
    from botkit.bot import Bot

log = logging.getLogger("botkit.dashboard")

COOKIE = "botkit_dashboard"
_CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'")


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _when(at: float | None) -> str:
    if at is None:
        return "–"
    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


def _slot(seconds: int) -> str:
    if seconds % 86_400 == 0:
        return "day" if seconds == 86_400 else f"{seconds // 86_400} days"
    if seconds % 3600 == 0:
        return "hour" if seconds == 3600 else f"{seconds // 3600} hours"
    return f"{seconds // 60} minutes"


def _score(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


class Dashboard:
    """Registered as a plugin (name "section:dashboard") when the config has `dashboard:`."""

    def __init__(self, config: DashboardConfig, bot: Bot) -> None:
        self.config = config
        self.bot = bot
        self.path = config.path.rstrip("/")
        token = config.token.get_secret_value().encode()
        self._token = token
        self._cookie = hmac.new(token, b"botkit dashboard login", hashlib.sha256).hexdigest()
        self._css = resources.files("botkit_plugins.dashboard").joinpath("static", "dashboard.css").read_bytes()

    @hookimpl
    def botkit_routes(self, server: Any) -> None:
        server.add_route("GET", self.path, self.overview)
        server.add_route("POST", f"{self.path}/login", self.login)
        server.add_route("POST", f"{self.path}/logout", self.logout)
        server.add_route("GET", f"{self.path}/turns/{{turn}}", self.turn)
        server.add_route("GET", f"{self.path}/dashboard.css", self.css)

    @property
    def low_fcs(self) -> float:
        if self.config.low_fcs is not None:
            return self.config.low_fcs
        fcs = self.bot.config.middlewares.get("fcs_warning")
        return getattr(fcs.settings, "threshold", 0.5) if fcs is not None else 0.5

    # -- who may look --------------------------------------------------------------------------------

    def authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "bearer" and given:
            return hmac.compare_digest(given.strip().encode(), self._token)
        cookie = request.cookies.get(COOKIE)
        return cookie is not None and hmac.compare_digest(cookie.encode(), self._cookie.encode())

    def _page(self, title: str, body: str, *, status: int = 200) -> web.Response:
        html = (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">'
                f'<meta name="referrer" content="same-origin"><title>{_e(title)}</title>'
                f'<link rel="stylesheet" href="{_e(self.path)}/dashboard.css"></head><body>{body}</body></html>')
        return web.Response(status=status, body=html.encode(), headers=self._headers("text/html"))

    @staticmethod
    def _headers(content_type: str) -> dict[str, str]:
        return {"Content-Type": f"{content_type}; charset=utf-8", "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
                "Content-Security-Policy": _CSP, "X-Frame-Options": "DENY"}

    def _refused(self, request: web.Request, *, wrong: bool = False) -> web.Response:
        """401: JSON for scripts, the login form for people; never any of the data."""
        headers = {"WWW-Authenticate": 'Bearer realm="botkit dashboard"'}
        if _wants_json(request):
            response = web.json_response({"error": "a token is needed (Authorization: Bearer ...)"}, status=401)
            response.headers.update(headers)
            return response
        error = '<p class="error" role="alert">That token is not right.</p>' if wrong else ""
        body = (f'<main class="login"><h1>botkit dashboard</h1>{error}'
                f'<form method="post" action="{_e(self.path)}/login">'
                '<label for="token">Dashboard token</label>'
                '<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>'
                '<button type="submit">Log in</button></form></main>')
        response = self._page("Log in · botkit dashboard", body, status=401)
        response.headers.update(headers)
        return response

    @staticmethod
    def _same_origin(request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        return origin is None or urlsplit(origin).netloc.lower() == request.host.lower()

    async def login(self, request: web.Request) -> web.Response:
        if not self._same_origin(request):
            raise web.HTTPForbidden(text="a login from another site")
        form = await request.post()
        given = form.get("token")
        if not isinstance(given, str) or not hmac.compare_digest(given.strip().encode(), self._token):
            log.warning("dashboard: a login with a wrong token from %s", request.remote)
            return self._refused(request, wrong=True)
        response = web.HTTPSeeOther(self.path)
        response.set_cookie(COOKIE, self._cookie, max_age=int(self.config.login_for), path=self.path or "/",
                            httponly=True, samesite="Strict", secure=request.secure)
        raise response

    async def logout(self, request: web.Request) -> web.Response:
        if not self._same_origin(request):
            raise web.HTTPForbidden(text="a logout from another site")
        response = web.HTTPSeeOther(self.path)
        response.del_cookie(COOKIE, path=self.path or "/")
        raise response

    async def css(self, request: web.Request) -> web.Response:
        return web.Response(body=self._css, headers=self._headers("text/css"))

    # -- the overview ----------------------------------------------------------------------------------

    async def overview(self, request: web.Request) -> web.Response:
        if not self.authorized(request):
            return self._refused(request)
        window = request.query.get("window", self.config.window)
        if window not in WINDOWS:
            window = self.config.window
        before = _int(request.query.get("before"))
        data = await figures(self.bot.store, self.bot.plugins, window=window, max_turns=self.config.max_turns, low_fcs=self.low_fcs)
        recent = await self.bot.store.recent_turns(limit=RECENT, before=before)
        data["recent"] = recent
        if _wants_json(request):
            return web.json_response(data, dumps=lambda value: json.dumps(value, default=str))
        return self._page("botkit dashboard", self._overview_html(data, window, before))

    def _overview_html(self, data: dict[str, Any], window: str, before: int | None) -> str:
        p = self.path
        tabs = "".join(
            f'<a href="{_e(p)}?window={w}"' + (' aria-current="page"' if w == window else "") + f">{w}</a>"
            for w in WINDOWS)
        timing = data["timings"]
        feedback = data["feedback"]
        cap = (f'<p class="note">Figures over the latest {data["max_turns"]:,} turns of the period.</p>'
               if data["capped"] else "")
        cards = "".join(f'<div class="card"><div class="label">{_e(label)}</div><div class="value">{_e(value)}</div>'
                        f'<div class="sub">{_e(sub)}</div></div>' for label, value, sub in (
            ("Turns", f'{data["turns"]:,}', f'in the last {window}'),
            ("Failures", f'{data["failed"]:,}', f'and {data["timeouts"]:,} timeouts'),
            ("First text", _seconds(timing["first_text_median"]), f'median · p95 {_seconds(timing["first_text_p95"])}'),
            ("Total time", _seconds(timing["total_median"]), f'median · p95 {_seconds(timing["total_p95"])}'),
            ("Feedback", f'👍 {feedback["up"]} · 👎 {feedback["down"]}',
             f'{_share(feedback["up_share"])} helpful · {_share(feedback["rate"])} of answers rated'),
            ("Low FCS", f'{data["low_fcs"]["count"]:,}', f'scored below {data["low_fcs"]["threshold"]:g}'),
            ("Not answered", f'{data["unanswered"]["count"]:,}',
             ", ".join(f"{n} {k}" for k, n in sorted(data["unanswered"]["kinds"].items())) or "none"),
            *((name.replace("_", " ").capitalize(), f"{sum(counts.values()):,}",
               ", ".join(f"{n:,} {value}" for value, n in sorted(counts.items())) or "none")
              for name, counts in sorted(data["tallies"].items())),
        ))
        return (f'<header class="bar"><h1>botkit dashboard</h1><nav class="tabs" aria-label="Period">{tabs}</nav>'
                f'<form method="post" action="{_e(p)}/logout"><button type="submit">Log out</button></form></header>'
                f'<main>{cap}<section class="cards" aria-label="Figures">{cards}</section>'
                f'{self._chart(data)}{self._groups(data)}'
                f'{self._listed("Answers with a low FCS", data["low_fcs"]["turns"])}'
                f'{self._listed("Questions the backend could not answer", data["unanswered"]["turns"])}'
                f'{self._recent(data["recent"], window, before)}</main>')

    @staticmethod
    def _chart(data: dict[str, Any]) -> str:
        points = data["over_time"]
        busiest = max((b["turns"] for b in points), default=0)
        top = busiest or 1
        bars = []
        for b in points:
            height = round(100 * b["turns"] / top)
            failed = round(100 * b["failed"] / b["turns"]) if b["turns"] else 0
            label = f'{_when(b["at"])}: {b["turns"]} turns, {b["failed"]} failed'
            bars.append(f'<div class="col" title="{_e(label)}"><div class="bar-ok h{height}">'
                        f'<div class="bar-failed h{failed}"></div></div></div>')
        first = _when(points[0]["at"]) if points else ""
        last = _when(points[-1]["at"]) if points else ""
        slot = _slot(data["bucket_seconds"])
        return (f'<section aria-labelledby="over-time"><h2 id="over-time">Turns over time</h2>'
                f'<p class="note">Turns per {slot} (failures in red); the busiest {slot} had {busiest}.</p>'
                f'<div class="chart" role="img" aria-label="Turns per {slot}">'
                f'{"".join(bars)}</div><div class="axis"><span>{_e(first)}</span><span>{_e(last)}</span></div>'
                '</section>')

    @staticmethod
    def _groups(data: dict[str, Any]) -> str:
        rows = "".join(
            f'<tr><td>{_e(g["adapter"])}</td><td>{_e(g["backend"])}</td><td class="n">{g["turns"]:,}</td>'
            f'<td class="n">{g["failed"]:,}</td><td class="n">{g["timeouts"]:,}</td>'
            f'<td class="n">{_seconds(g["first_text_median"])}</td><td class="n">{_seconds(g["first_text_p95"])}</td>'
            f'<td class="n">{_seconds(g["total_median"])}</td><td class="n">{_seconds(g["total_p95"])}</td></tr>'
            for g in data["groups"]) or '<tr><td colspan="9">No turns in this period.</td></tr>'
        return ('<section aria-labelledby="by-adapter"><h2 id="by-adapter">By adapter and backend</h2>'
                '<table><thead><tr><th>Adapter</th><th>Backend</th><th>Turns</th><th>Failed</th><th>Timeouts</th>'
                '<th>First text (median)</th><th>First text (p95)</th><th>Total (median)</th><th>Total (p95)</th>'
                f'</tr></thead><tbody>{rows}</tbody></table></section>')

    def _rows(self, turns: list[dict[str, Any]]) -> str:
        return "".join(
            f'<tr><td>{_e(_when(t["created_at"]))}</td><td>{_e(t["adapter"])}</td>'
            f'<td class="thread">{_e(t["thread"])}</td><td><span class="status {_e(t["status"])}">{_e(t["status"])}'
            f'</span></td><td class="n">{_score(t["score"])}</td>'
            f'<td><a href="{_e(self.path)}/turns/{int(t["id"])}">{_e(t["question"])}</a></td></tr>'
            for t in turns)

    _HEAD = ("<thead><tr><th>When</th><th>Adapter</th><th>Thread</th><th>Status</th><th>Score</th>"
             "<th>Question</th></tr></thead>")

    def _listed(self, title: str, turns: list[dict[str, Any]]) -> str:
        slug = title.lower().replace(" ", "-")
        body = self._rows(turns) or '<tr><td colspan="6">None in this period.</td></tr>'
        return f'<section aria-labelledby="{slug}"><h2 id="{slug}">{_e(title)}</h2><table>{self._HEAD}<tbody>{body}' \
               '</tbody></table></section>'

    def _recent(self, turns: list[dict[str, Any]], window: str, before: int | None) -> str:
        body = self._rows(turns) or '<tr><td colspan="6">No questions yet.</td></tr>'
        more = ""
        if len(turns) >= RECENT:
            query = urlencode({"window": window, "before": turns[-1]["id"]})
            more = f'<p><a href="{_e(self.path)}?{_e(query)}">Older questions</a></p>'
        newest = f'<p><a href="{_e(self.path)}?window={_e(window)}">Newest questions</a></p>' if before else ""
        return (f'<section aria-labelledby="recent"><h2 id="recent">Recent questions</h2>{newest}<table>{self._HEAD}'
                f'<tbody>{body}</tbody></table>{more}</section>')

    # -- one turn ----------------------------------------------------------------------------------------

    async def turn(self, request: web.Request) -> web.Response:
        if not self.authorized(request):
            return self._refused(request)
        turn_id = _int(request.match_info["turn"])
        turn = await self.bot.store.turn_by_id(turn_id) if turn_id is not None else None
        if turn is None:
            raise web.HTTPNotFound(text="no such turn")
        added = (await self.bot.plugins.turn_annotations(self.bot.store, [turn["event_id"]])).get(turn["event_id"], {})
        turn.update(added)
        if _wants_json(request):
            return web.json_response(turn, dumps=lambda value: json.dumps(value, default=str))
        sources = "".join(
            f'<li>[{_e(s.get("index"))}] ' + (f'<a href="{_e(s["url"])}" rel="noopener noreferrer">{_e(s.get("title"))}</a>'
                                              if _linkable(s.get("url")) else _e(s.get("title"))) + "</li>"
            for s in turn["sources"]) or "<li>none</li>"
        votes = "".join(f'<li>{_e(f["user"])}: {_e(f["value"] or "comment")}'
                        + (f' — {_e(f["comment"])}' if f["comment"] else "") + f' ({_e(_when(f["at"]))})</li>'
                        for f in turn.get("feedback", ())) or "<li>none</li>"
        facts = [("When", _when(turn["created_at"])), ("Thread", turn["thread"]), ("Adapter", turn["adapter"]),
                 ("Backend", turn["backend"]), ("Backend session", turn.get("session_id")), ("User", turn["user"]),
                 ("Status", turn["status"]), ("Error", turn["error"]),
                 ("Score", _score(turn["score"])),
                 ("First text", _seconds(turn["first_text_after"])), ("Total time", _seconds(turn["duration"])),
                 ("Edits", turn["edits"]), ("Event id", turn["event_id"]),
                 *((name, v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str))
                   for name, v in added.items() if name != "feedback")]
        dl = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v if v is not None else '–')}</dd>" for k, v in facts)
        body = (f'<header class="bar"><h1>Turn {int(turn["id"])}</h1><nav class="tabs">'
                f'<a href="{_e(self.path)}">Back to the dashboard</a></nav></header><main>'
                f'<section><h2>Question</h2><pre class="text">{_e(turn["question"])}</pre></section>'
                f'<section><h2>Answer</h2><pre class="text">{_e(turn["answer"])}</pre></section>'
                f'<section><h2>Sources</h2><ul>{sources}</ul></section>'
                f'<section><h2>Feedback</h2><ul>{votes}</ul></section>'
                f'<section><h2>Details</h2><dl>{dl}</dl></section></main>')
        return self._page(f"Turn {int(turn['id'])} · botkit dashboard", body)


def _int(value: str | None) -> int | None:
    if value is None or not value.isdigit() or len(value) > 18:
        return None
    return int(value)


def _linkable(url: object) -> bool:
    return isinstance(url, str) and urlsplit(url).scheme in ("http", "https")


def _wants_json(request: web.Request) -> bool:
    return request.query.get("format") == "json" or "application/json" in request.headers.get("Accept", "")

