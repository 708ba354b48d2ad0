"""Chinese and English texts of the web pages; Chinese first when ``web.language`` is zh.

The board script gets the table (``TEXTS``, less the `SERVER_ONLY` keys) as JSON and
switches without reload; server-rendered pages (portal, admin) pick the language from
``?lang=``, then the session, then the game file. A text may have ``{name}`` fields,
filled by ``t(key, name=...)``; a `Message` carries a key and its values to whoever shows
it (the admin panel in the admin's language, the JSON API in English).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import request, session

from ..submission.verdicts import ACCEPTED_TEXT, Verdict
from ..submission.verdicts import TEXTS as VERDICT_TEXTS
from .context import game_config

TEXTS: dict[str, tuple[str, str]] = {  # key: (zh, en)
    "board": ("积分榜", "Scoreboard"),
    "round": ("轮次", "Round"),
    "remaining": ("剩余", "Left"),
    "state.not_started": ("未开始", "Not started"),
    "state.running": ("进行中", "Running"),
    "state.paused": ("已暂停", "Paused"),
    "state.over": ("已结束", "Game over"),
    "frozen": ("榜单已冻结", "Board frozen"),
    "rank": ("排名", "#"),
    "team": ("队伍", "Team"),
    "total": ("总分", "Total"),
    "atk": ("攻击", "ATK"),
    "def": ("防御", "DEF"),
    "sla": ("可用性", "SLA"),
    "service": ("题目", "Service"),
    "status": ("状态", "Status"),
    "attacks": ("实时攻击", "Live attacks"),
    "attack_view": ("攻击关系", "Attack view"),
    "first_bloods": ("一血", "First bloods"),
    "announcements": ("公告", "Announcements"),
    "history": ("分数走势", "Score over time"),
    "no_attacks": ("暂无攻击", "No attacks yet"),
    "no_first_bloods": ("暂无一血", "No first blood yet"),
    "no_history": ("暂无分数记录", "No scores yet"),
    "no_announcements": ("暂无公告", "No announcements"),
    "stolen": ("得旗", "stolen"),
    "lost": ("失旗", "lost"),
    "big_screen": ("大屏", "Big screen"),
    "connected": ("已连接", "live"),
    "disconnected": ("连接中断", "offline"),
    "OK": ("正常", "OK"),
    "CORRUPT": ("数据损坏", "CORRUPT"),
    "MUMBLE": ("异常", "MUMBLE"),
    "DOWN": ("宕机", "DOWN"),
    "CHECKER_ERROR": ("检查出错", "CHECKER ERROR"),
    "RECOVERING": ("恢复中", "RECOVERING"),
    "portal": ("队伍中心", "Team portal"),
    "login": ("登录", "Log in"),
    "logout": ("退出", "Log out"),
    "token": ("队伍令牌", "Team token"),
    "password": ("密码", "Password"),
    "bad_login": ("令牌或密码错误", "Wrong token or password"),
    "submit_flags": ("提交 flag", "Submit flags"),
    "one_per_line": ("每行一个 flag", "one flag per line"),
    "submit": ("提交", "Submit"),
    "my_services": ("我的服务", "My services"),
    "my_submissions": ("提交记录", "My submissions"),
    "accepted_captures": ("已得分的攻击", "Accepted captures"),
    "attack_data": ("攻击数据", "Attack data"),
    "access": ("靶机访问", "Target access"),
    "address": ("地址", "Address"),
    "verdict": ("结果", "Verdict"),
    "victim": ("被攻击方", "Victim"),
    "time": ("时间", "Time"),
    "message": ("信息", "Message"),
    "admin": ("管理后台", "Admin"),
    "no_data": ("暂无数据", "nothing yet"),
    "flag": ("flag", "Flag"),
    "none": ("无", "none"),
    "channel": ("渠道", "Channel"),
    "channel.faust": ("TCP faust", "TCP faust"),
    "channel.ructf": ("TCP ructf", "TCP ructf"),
    "channel.forcad": ("TCP forcad", "TCP forcad"),
    "channel.http": ("HTTP", "HTTP"),
    "channel.portal": ("网页表单", "portal form"),
    "history_note": ("本队最近的 {count} 条提交（TCP、HTTP 和本页表单，被拒绝的也在内），约每秒更新一次",
                     "your team's newest {count} submissions (over TCP, HTTP and this form, denied ones "
                     "included), updated about once a second"),
    # traffic captures (web/captures.py)
    "captures.title": ("流量包", "Traffic captures"),
    "captures.note": ("本队靶机在比赛网络上的流量（标准 pcap，Tulip、Wireshark 等工具可直接打开），"
                      "每台靶机每轮一个文件，该轮结束 {delay} 轮后开放下载",
                      "your boxes' traffic on the game network (standard pcap files: Tulip, Wireshark and "
                      "other pcap tools read them as they are), one file per box and round, released "
                      "{delay} round(s) after it"),
    "captures.api": ("也可用 API 下载：", "or through the API:"),
    "captures.off": ("本场比赛不提供流量包", "this game hands out no traffic captures"),
    "captures.part": ("分段", "Part"),
    "captures.bytes": ("字节", "Bytes"),
    "captures.file": ("文件", "File"),
    # verdicts: English as the farms get them (verdicts.py)
    "verdict.accepted": ("已接受，得 {points:g} 分", ACCEPTED_TEXT),
    "verdict.invalid": ("拒绝：无效 flag", VERDICT_TEXTS[Verdict.INVALID]),
    "verdict.own": ("拒绝：这是本队的 flag", VERDICT_TEXTS[Verdict.OWN]),
    "verdict.old": ("拒绝：flag 已过期", VERDICT_TEXTS[Verdict.OLD]),
    "verdict.duplicate": ("拒绝：已提交过这个 flag", VERDICT_TEXTS[Verdict.DUPLICATE]),
    "verdict.nop": ("拒绝：无效 flag（NOP 队伍的）", VERDICT_TEXTS[Verdict.NOP]),
    "verdict.nop_submitter": ("拒绝：NOP 队伍不能提交 flag", VERDICT_TEXTS[Verdict.NOP_SUBMITTER]),
    "verdict.not_started": ("比赛尚未开始", VERDICT_TEXTS[Verdict.NOT_STARTED]),
    "verdict.paused": ("比赛已暂停，请稍后再试", VERDICT_TEXTS[Verdict.PAUSED]),
    "verdict.over": ("比赛已结束", VERDICT_TEXTS[Verdict.OVER]),
    "verdict.service_down": ("拒绝：本队服务不可用，请稍后再试", VERDICT_TEXTS[Verdict.SERVICE_DOWN]),
    "verdict.rate_limited": ("拒绝：提交太快，请放慢", VERDICT_TEXTS[Verdict.RATE_LIMITED]),
    "verdict.unknown_team": ("拒绝：来源地址不属于任何队伍", VERDICT_TEXTS[Verdict.UNKNOWN_TEAM]),
    "verdict.error": ("错误：内部错误，请稍后再试", VERDICT_TEXTS[Verdict.ERROR]),
    # admin panel (action.*: the clock requests, as buttons and in messages)
    "action.start": ("开始", "start"),
    "action.pause": ("暂停", "pause"),
    "action.resume": ("继续", "resume"),
    "action.stop": ("结束", "stop"),
    "action.reopen": ("重新开放", "reopen"),
    "admin.game": ("比赛", "Game"),
    "admin.schedule.start": ("开始时间", "start"),
    "admin.schedule.stop": ("结束时间", "stop"),
    "admin.confirm_past_stop": ("结束时间已过也保存（比赛立即结束）", "a stop in the past ends the game now"),
    "admin.save_schedule": ("保存计划", "schedule"),
    "admin.schedule_now": ("当前计划：开始 {start}，结束 {stop}", "now: start {start}, stop {stop}"),
    "admin.new_stop": ("新的结束时间（留空：不设）", "new stop (empty: none)"),
    "admin.pending": ("已请求，计时器接下来执行：", "requested, the ticker applies it next:"),
    "admin.engine": ("轮次引擎", "Round engine"),
    "admin.engine_note": ("迟到：放行后超过 1 秒才开始 · 截断：某个动作剩下的时间不够它的完整超时 · "
                          "未开始 / 未完成：轮次结束时没有结果。这些都算“未检查”，不让队伍丢分。",
                          "late: started over 1 s after release · cut: an action had no time for its whole "
                          "timeout · unstarted / unfinished: no result at the close. All of these are "
                          "\"not checked\" and cost the team nothing."),
    "admin.engine.planned": ("计划", "planned"),
    "admin.engine.released": ("已放行", "released"),
    "admin.engine.started": ("已开始", "started"),
    "admin.engine.late": ("迟到", "late"),
    "admin.engine.cut": ("截断", "cut"),
    "admin.engine.unstarted": ("未开始", "unstarted"),
    "admin.engine.unfinished": ("未完成", "unfinished"),
    "admin.engine.max_delay": ("最大延迟（秒）", "max delay (s)"),
    "admin.publish": ("发布", "publish"),
    "admin.truth": ("真实榜单（不受冻结影响）", "Scoreboard (truth)"),
    "admin.teams": ("队伍", "Teams"),
    "admin.services": ("题目", "Services"),
    "admin.disabled": ("停用", "disabled"),
    "admin.save": ("保存", "save"),
    "admin.new_team": ("新队伍", "new team"),
    "admin.name": ("名称", "name"),
    "admin.token_optional": ("令牌（可选）", "token (optional)"),
    "admin.add": ("添加", "add"),
    "admin.sessions": ("会话", "Sessions"),
    "admin.sessions.revoke": ("全部登出", "log everyone out"),
    "admin.sessions.rotate": ("全部登出并更换会话签名密钥", "log everyone out and change the cookie key"),
    "admin.reset": ("重置", "Reset"),
    "admin.reset_type": ("输入比赛名称", "type the game name"),
    "admin.reset_what": ("以删除所有分数、flag 和事件：", "to delete every score, flag and event:"),
    "admin.reset_game": ("重置比赛", "reset game"),
    "admin.check_log": ("检查日志 · 队伍 {team} · 题目 {service}", "checker log · team {team} · service {service}"),
    "admin.rerun": ("立即重新检查", "re-run check now"),
    "admin.public": ("公开信息", "public"),
    "admin.private": ("内部信息", "private"),
    "admin.detail": ("详情", "detail"),
    # admin messages (admin.py; the JSON API answers the English)
    "admin.is.not_started": ("未开始", "not started"),
    "admin.is.running": ("进行中", "running"),
    "admin.is.paused": ("已暂停", "paused"),
    "admin.is.over": ("已结束", "over"),
    "admin.cannot": ("现在不能{action}：比赛{state}{hint}", "cannot {action} the game: it is {state}{hint}"),
    "admin.reopen_first": ("（请先重新开放）", " (reopen it first)"),
    "admin.refused": ("被拒绝：{reason}", "{reason}"),
    "admin.unknown_action": ("未知操作 {action}：可用 {known}", "unknown action {action}: use {known}"),
    "admin.reopen_apart": ("重新开放是单独的操作（需要新的结束时间）",
                           "reopen is its own action (it takes the new stop time)"),
    "admin.requested": ("已请求{action}：计时器会在一秒内执行",
                        "{action} requested: the ticker applies it within a second"),
    "admin.requested_no_ticker": ("已请求{action}；没有计时器在运行：等它启动后才生效",
                                  "{action} requested; no ticker is running: it takes effect when one starts"),
    "admin.must_be_number": ("{key} 必须是整数，而不是 {value}", "{key} must be a whole number, not {value}"),
    "admin.must_be_text": ("{key} 必须是文本，而不是 {value}", "{key} must be text, not {value}"),
    "admin.must_be_yes_no": ("{key} 必须是 true 或 false，而不是 {value}", "{key} must be true or false, not {value}"),
    "admin.not_a_time": ("{name}：不是时间：{value}", "{name}: not a time: {value}"),
    "admin.not_a_time_text": ("{name}：不是时间：{value}（请用 ISO 8601，例如 2025-01-01T10:00）",
                              "{name}: not a time: {value} (use ISO 8601, e.g. 2025-01-01T10:00)"),
    "admin.not_a_time_kind": ("{name}：不是时间：{value}（请用 ISO 8601 文本或时间戳秒数）",
                              "{name}: not a time: {value} (use ISO 8601 text or epoch seconds)"),
    "admin.time_range": ("{name}：{value} 不在 {low} 年到 {high} 年之间",
                         "{name}: {value} is not a time between {low} and {high}"),
    "admin.stop_before_start": ("结束时间必须晚于开始时间", "stop must be after start"),
    "admin.stop_in_past": ("结束时间已过：保存它会立即结束比赛；确需如此请勾选确认（或直接结束比赛）",
                           "stop is in the past: saving it ends the game at once; confirm to do that (or use stop)"),
    "admin.stop_not_future": ("新的结束时间必须在将来", "the new stop must be in the future"),
    "admin.schedule_saved": ("计划已保存：计时器会在这些时间开始和结束比赛",
                             "schedule saved: the ticker starts and stops the game at these times"),
    "admin.reopened_until": ("已请求重新开放（截止 {stop}）：比赛保持暂停，直到你继续",
                             "reopen requested (until {stop}): the game is paused until you resume it"),
    "admin.reopened_open": ("已请求重新开放（不设结束时间）：比赛保持暂停，直到你继续",
                            "reopen requested (with no scheduled end): the game is paused until you resume it"),
    "admin.no_team": ("没有 id 为 {id} 的队伍", "no team with id {id}"),
    "admin.team_id": ("队伍 id 是数字，而不是 {value}", "a team id is a number, not {value}"),
    "admin.token_fixed": ("队伍令牌不能修改；只有新队伍可以指定令牌",
                          "a team's token cannot be changed; only a new team may be given one"),
    "admin.team_needs_name": ("新队伍需要名称", "a new team needs a name"),
    "admin.no_team_id_left": ("没有可用的队伍 id 了（最多 {max}）", "no team id left (at most {max})"),
    "admin.team_name_length": ("队伍名称需要 1 到 64 个字符", "a team name needs 1 to 64 characters"),
    "admin.team_name_taken": ("队伍名称 {name} 已被占用", "team name {name} is taken"),
    "admin.bad_address": ("地址 {address} 既不是主机名也不是 IP 地址",
                          "address {address} is neither a host name nor an IP address"),
    "admin.token_short": ("队伍令牌至少需要 8 个字符", "a team token needs at least 8 characters"),
    "admin.token_taken": ("这个令牌属于另一支队伍", "that token belongs to another team"),
    "admin.team_added": ("已添加队伍 {id}，令牌 {token}", "team {id} added, token {token}"),
    "admin.team_saved": ("队伍 {id} 已保存", "team {id} saved"),
    "admin.no_service": ("没有 id 为 {id} 的题目", "no service with id {id}"),
    "admin.service_name_length": ("名称：请用 1 到 64 个字符", "name: use 1 to 64 characters"),
    "admin.service_saved": ("题目 {id} 已保存", "service {id} saved"),
    "admin.announcement_empty": ("公告需要内容", "an announcement needs text"),
    "admin.announced": ("公告已发布", "announcement published"),
    "admin.no_playing_team": ("没有 id 为 {id} 的参赛队伍", "no playing team with id {id}"),
    "admin.no_enabled_service": ("没有 id 为 {id} 的已启用题目", "no enabled service with id {id}"),
    "admin.no_round": ("还没有开放的轮次", "no round is open yet"),
    "admin.rerun_queued": ("队伍 {team} 题目 {service} 的检查已排队", "check of team {team} service {service} queued"),
    "admin.reset_confirm": ("请输入比赛名称 {name} 以确认重置", "type the game name {name} to confirm the reset"),
    "admin.reset_done": ("比赛已重置", "game reset"),
    "admin.revoked": ("已在所有网页节点注销 {count} 个会话：所有人都要重新登录",
                      "{count} sessions revoked on every web node: everyone logs in again"),
    "admin.key_in_file": ("会话已注销；签名密钥由比赛文件的 web.session_key 设定：请在那里修改并重启",
                          "sessions revoked; the key is set by web.session_key in the game file: change it there "
                          "and restart"),
    "admin.rotated": ("会话已注销，所有节点在一秒内改用新的签名密钥",
                      "sessions revoked and a new cookie key in use on every node within a second"),
    "admin.unknown_sessions": ("未知的会话操作 {what}：请用 revoke 或 rotate",
                               "unknown sessions action {what}: use revoke or rotate"),
    "how_to_submit": ("如何提交 flag", "How to submit flags"),
    "flag_format": ("flag 格式", "Flag format"),
    "http_batch": ("请求体为 flag 的 JSON 列表，每次最多",
                   "the body is a JSON list of flags, at most this many per request:"),
    "tcp_by_token": ("连接后先发送队伍令牌一行，然后每行一个 flag",
                     "send your team token on the first line, then one flag per line"),
    "tcp_by_address": ("每行一个 flag；按来源地址识别队伍，须从本队网络连接",
                       "one flag per line; your team is known by the source address, so connect from your network"),
}


def clock(epoch: float | str | None) -> str:
    """An epoch time as the host's local clock: HH:MM:SS today, else with the date."""
    try:
        moment = dt.datetime.fromtimestamp(float(epoch or 0))
    except (TypeError, ValueError, OverflowError, OSError):
        return "-"
    if moment.date() == dt.date.today():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def language() -> str:
    """'zh' or 'en' for this request (a ?lang= choice is kept in the session)."""
    chosen = request.args.get("lang")
    if chosen in ("zh", "en"):
        session["lang"] = chosen
        return chosen
    return session.get("lang") or game_config().web.language


def text(key: str, lang: str, values: dict[str, Any] | None = None) -> str:
    """The text for key in `lang` ("zh", else English), filled with `values` (a Message among
    them in the same language); the key itself if unknown."""
    pair = TEXTS.get(key)
    if pair is None:
        return key
    chosen = pair[0] if lang == "zh" else pair[1]
    if not values:
        return chosen
    return chosen.format(**{name: v.text(lang) if isinstance(v, Message) else v for name, v in values.items()})


class Message:
    """A text of the table with its values, for whoever reads it: ``str()`` is the English
    (logs, JSON answers), `text` any language; a value may be a Message itself."""

    __slots__ = ("key", "values")

    def __init__(self, key: str, /, **values: Any) -> None:
        self.key = key
        self.values = values

    def text(self, lang: str) -> str:
        return text(self.key, lang, self.values)

    def __str__(self) -> str:
        return self.text("en")

    def __repr__(self) -> str:
        return f"Message({self.key!r}, {self.values!r})"


def t(key: str, /, **values: Any) -> str:
    """The text for key in this request's language, filled with `values` (the key itself if unknown)."""
    return text(key, language(), values)


def say(message: Message | str) -> str:
    """A message in this request's language (plain text as it is)."""
    return message.text(language()) if isinstance(message, Message) else message


SERVER_ONLY = ("admin.", "action.", "verdict.", "channel.", "captures.")  # texts of server-rendered pages only


def table(lang: str) -> dict[str, str]:
    """The table in one language for the board script (without the server-rendered pages' texts)."""
    index = 0 if lang == "zh" else 1
    return {key: pair[index] for key, pair in TEXTS.items() if not key.startswith(SERVER_ONLY)}
