"""Chinese and English texts of the web pages; Chinese first when ``web.language`` is zh.

The board script gets the same table (``TEXTS``) as JSON and switches without reload;
server-rendered pages (portal, admin) pick the language from ``?lang=``, then the
session, then the game file.
"""

from __future__ import annotations

import datetime as dt

from flask import request, session

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


def t(key: str) -> str:
    """The text for key in this request's language (the key itself if unknown)."""
    pair = TEXTS.get(key)
    if pair is None:
        return key
    return pair[0] if language() == "zh" else pair[1]


def table(lang: str) -> dict[str, str]:
    """The whole table in one language (for the board script)."""
    index = 0 if lang == "zh" else 1
    return {key: pair[index] for key, pair in TEXTS.items()}
