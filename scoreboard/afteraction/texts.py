"""Chinese and English texts of the replay's control bar and the after-action report."""

from __future__ import annotations

TEXTS: dict[str, tuple[str, str]] = {  # key: (zh, en)
    # the replay's control bar
    "replay": ("赛后回放", "Replay"),
    "play": ("播放", "Play"),
    "pause": ("暂停", "Pause"),
    "speed": ("倍速", "Speed"),
    "jump": ("跳到", "Jump to"),
    "game_start": ("比赛开始", "game start"),
    "after_round": ("第 {r} 轮结束", "end of round {r}"),
    "prev_round": ("上一轮", "Previous round"),
    "next_round": ("下一轮", "Next round"),
    # the report
    "report": ("赛后报告", "After-action report"),
    "generated": ("生成于 {when}，数据来源：{source}", "Generated {when} from {source}"),
    "source.redis": ("实时 Redis 中的比赛 {where}", "game {where} in live Redis"),
    "source.folder": ("导出目录 {where}", "export folder {where}"),
    "summary": ("概况", "Summary"),
    "summary_line": ("{teams} 支队伍，{services} 个题目，{rounds} 轮，计分方式 {formula}；共 {captures} 次夺旗，"
                     "{flags} 面不同的旗被窃取。",
                     "{teams} teams, {services} services, {rounds} rounds, scoring {formula}; {captures} flag "
                     "captures, {flags} distinct flags stolen."),
    "verified": ("逐轮回放的总分与排名与实时记录完全一致（{rounds} 轮）。",
                 "The totals and ranks replayed round by round equal the live record exactly ({rounds} rounds)."),
    "not_verified": ("回放与实时记录不一致：", "The replay differs from the live record:"),
    "final_ranking": ("最终排名", "Final ranking"),
    "rank": ("排名", "Rank"),
    "team": ("队伍", "Team"),
    "total": ("总分", "Total"),
    "atk": ("攻击", "ATK"),
    "def": ("防御", "DEF"),
    "sla": ("可用性", "SLA"),
    "captured": ("夺旗数", "Flags captured"),
    "lost": ("失旗数", "Flags lost"),
    "score_over_time": ("分数变化", "Score over time"),
    "round": ("轮次", "Round"),
    "score": ("分数", "Score"),
    "teams": ("各队详情", "Teams"),
    "services": ("各题详情", "Services"),
    "service": ("题目", "Service"),
    "status_timeline": ("服务状态时间线", "Service status timeline"),
    "flags_lost_by_service": ("按题目统计的失旗", "Flags lost by service"),
    "flags_lost_by_attacker": ("按攻击者统计的失旗", "Flags lost by attacker"),
    "attacks_made": ("发起的攻击", "Attacks made"),
    "attacker": ("攻击者", "Attacker"),
    "victim": ("受害者", "Victim"),
    "flags": ("旗数", "Flags"),
    "first_bloods": ("一血", "First bloods"),
    "first_blood_of": ("一血", "First blood"),
    "none": ("无", "none"),
    "patch": ("修复", "Fix"),
    "time_to_first_patch": ("首次修复用时", "Time to first fix"),
    "first_lost": ("首次失旗", "First flag lost"),
    "fixed_in": ("修复于", "Fixed in"),
    "time_to_fix": ("修复用时", "Time to fix"),
    "sla_percent": ("可用率", "SLA"),
    "patch.never_lost": ("从未失旗", "never lost a flag"),
    "patch.fixed": ("第 {r} 轮起修复", "fixed from round {r}"),
    "patch.not_fixed": ("未见修复", "no fix seen"),
    "round_n": ("第 {r} 轮", "round {r}"),
    "minutes": ("{m} 分钟", "{m} min"),
    "broken_first": ("最先攻破", "Broken first by"),
    "exploited_by": ("利用该题的队伍", "Teams exploiting it"),
    "victims": ("失旗的队伍", "Teams losing flags"),
    "captures": ("夺旗次数", "Captures"),
    "exploitation": ("每轮利用情况", "Exploitation per round"),
    "attackers_per_round": ("攻击队伍数", "attacking teams"),
    "victims_per_round": ("失旗队伍数", "teams losing flags"),
    "fixes": ("各队修复时间", "When teams fixed it"),
    "attack_matrix": ("攻击矩阵（攻击者 → 受害者，旗数）", "Attack matrix (attacker → victim, flags)"),
    "definitions": ("定义", "Definitions"),
    "def.flags_lost": ("失旗数：该队被窃取过至少一次的不同旗帜数（与积分榜一致）；"
                       "按攻击者统计时，每个攻击者窃取的不同旗帜分别计数。",
                       "Flags lost: distinct flags of the team stolen at least once (as on the scoreboard); by "
                       "attacker, each attacker's distinct flags are counted for that attacker."),
    "def.fixed": ("修复：某队的某题在第 R 轮之后放置的旗帜再未被窃取，而其他队伍在第 R 轮之后放置的该题旗帜仍被窃取，"
                  "则称该队从第 R+1 轮起修复了该题（R 为其最后一面被窃取旗帜的放置轮次）。若此后其他队伍也不再失旗，"
                  "则无法判断，记为“未见修复”。不再被攻击的队伍看起来也像已修复：事件无法区分两者。"
                  "修复用时 = 第 R+1 轮开始时间 − 该队该题首次失旗时间。",
                  "Fixed: a team fixed a service from round R+1 when no flag of that service placed after round R "
                  "(R: the round of its last stolen flag) was stolen from it, while flags of that service placed "
                  "after round R were still stolen from other teams. When nobody lost such later flags it cannot be "
                  "told, and the report says \"no fix seen\". A team nobody attacks any more looks fixed too: the "
                  "events cannot tell the two apart. Time to fix = start of round R+1 − the team's first flag lost "
                  "on that service."),
    "def.first_blood": ("一血：某题被接受的第一次夺旗。", "First blood: the first accepted capture of a service."),
    "def.sla": ("可用率：被评判的轮次中服务正常（OK 或 RECOVERING）的比例；"
                "平台自身故障（CHECKER_ERROR）与未检查的轮次不计入。",
                "SLA: the share of judged rounds the service was up (OK or RECOVERING); rounds the platform failed "
                "(CHECKER_ERROR) or never checked are not judged."),
    "status.OK": ("正常", "OK"),
    "status.RECOVERING": ("恢复中", "RECOVERING"),
    "status.CORRUPT": ("数据损坏", "CORRUPT"),
    "status.MUMBLE": ("异常", "MUMBLE"),
    "status.DOWN": ("宕机", "DOWN"),
    "status.CHECKER_ERROR": ("检查器错误", "CHECKER ERROR"),
    "status.UNCHECKED": ("未检查", "unchecked"),
}


def texts(lang: str) -> dict[str, str]:
    """Every text in `lang` ("zh", else English)."""
    return {key: pair[0] if lang == "zh" else pair[1] for key, pair in TEXTS.items()}


def text(lang: str, key: str, **values: object) -> str:
    """One text in `lang`, filled with `values`."""
    pair = TEXTS[key]
    return (pair[0] if lang == "zh" else pair[1]).format(**values)
