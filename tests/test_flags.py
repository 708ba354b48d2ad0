"""Signed flags: shape, round trip, forgery and other games' flags."""

import re

import pytest

from scoreboard.flags import FlagCodec, InvalidFlagFormat, InvalidFlagMAC


def test_flag_has_the_classic_shape_and_decodes_to_its_fields():
    codec = FlagCodec("secret-secret-secret")
    flag = codec.generate(1234, 42, 7, 3)
    assert re.fullmatch(r"[A-Z0-9]{31}=", flag)
    info = codec.verify(flag)
    assert (info.round, info.team, info.service, info.slot) == (1234, 42, 7, 3)


def test_prefix_format_wraps_the_same_body():
    codec = FlagCodec("secret-secret-secret", "FLAG")
    flag = codec.generate(1, 2, 3)
    assert re.fullmatch(codec.pattern, flag)
    assert flag.startswith("FLAG{") and flag.endswith("}")
    assert codec.verify(flag).team == 2
    with pytest.raises(InvalidFlagFormat):
        codec.verify(flag[5:-1])


def test_flag_from_another_game_secret_is_invalid():
    flag = FlagCodec("one-secret-one-secret").generate(1, 2, 3)
    with pytest.raises(InvalidFlagMAC):
        FlagCodec("another-secret-another").verify(flag)


def test_every_single_character_change_is_rejected():
    codec = FlagCodec("secret-secret-secret")
    flag = codec.generate(9, 9, 9)
    for index in range(31):
        for char in "A7":
            if flag[index] != char:
                forged = flag[:index] + char + flag[index + 1 :]
                with pytest.raises((InvalidFlagMAC, InvalidFlagFormat)):
                    codec.verify(forged)


@pytest.mark.parametrize("text", ["", "x" * 32, "A" * 31 + "=", "A" * 32, "\xff" * 32, "a" * 31 + "=",
                                  "1" * 31 + "="])
def test_garbage_is_invalid_format_or_mac(text):
    with pytest.raises((InvalidFlagFormat, InvalidFlagMAC)):
        FlagCodec("secret-secret-secret").verify(text)


def test_bytes_and_str_verify_alike():
    codec = FlagCodec("secret-secret-secret")
    flag = codec.generate(5, 6, 7)
    assert codec.verify(flag.encode()) == codec.verify(flag)


def test_a_flag_has_one_spelling_so_it_cannot_be_scored_twice():
    codec = FlagCodec("secret-secret-secret")
    flag = codec.generate(3, 4, 5)
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".index(flag[30])
    for low_bits in range(1, 8):  # same bytes under a lenient decoder, other text
        variant = flag[:30] + "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[last | low_bits] + "="
        if variant != flag:
            with pytest.raises(InvalidFlagFormat):
                codec.verify(variant)


def test_flags_are_the_same_as_every_earlier_version_made():
    """The precomputed HMAC states give the same flags as hmac.digest did (a game restarted on
    a newer version still accepts the flags planted before)."""
    assert FlagCodec("secret-secret-secret").generate(7, 2, 3, 1) == "AAAAOABAGE7V7LZ73LG7UC73FNMBFKQ="
    assert FlagCodec("secret-secret-secret", "ADR").generate(123456, 4000, 200, 15) == \
        "ADR{AHREB6QMR4NMW4MBLVLVTZK5JJYJIIQ=}"


def test_check_is_verify_without_raising():
    codec = FlagCodec("secret-secret-secret")
    flag = codec.generate(7, 2, 3, 1)
    assert codec.check(flag) == codec.verify(flag)
    assert codec.check(flag[:-2] + "A=") is None and codec.check("junk") is None


def test_only_the_base32_alphabet_decodes_whatever_int_would_accept():
    """int(text, 32) takes digits 0-9 and 8/9, lower case, "_" between digits and white space
    around them: none of those is a flag's spelling."""
    codec = FlagCodec("secret-secret-secret")
    flag = codec.generate(7, 2, 3, 1)
    variants = [flag.lower(), " " + flag[1:], flag[:30] + " =", flag[:5] + "_" + flag[6:], "+" + flag[1:],
                flag[:3] + "0" + flag[4:], flag[:3] + "8" + flag[4:], flag[:31] + "A", flag[:31] + "\n"]
    for variant in variants:
        assert len(variant) == 32
        assert codec.check(variant) is None and codec.check(variant.encode()) is None
        with pytest.raises((InvalidFlagFormat, InvalidFlagMAC)):
            codec.verify(variant)
    assert codec.check(flag.encode()) == (7, 2, 3, 1)
