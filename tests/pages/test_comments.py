from __future__ import annotations

from flowwarden.pages.comments import statement_comments


def test_reasons_come_from_the_comment_block_above_the_statement():
    source = (
        "def rule(event):\n"
        "    # Only internal sources\n"
        "    # (missing counts as internal)\n"
        "    if event.udm('source_ip'):\n"
        "        return False\n"
        "    return (event.udm('destination_port') == 53  # DNS only\n"
        "            and event.udm('action') == 'ACCEPT')\n"
    )
    comments = statement_comments(source)
    assert comments[4] == "Only internal sources\n(missing counts as internal)"
    assert comments[5] == comments[4]  # the block's comment covers its body
    assert comments[6] == comments[7] == "DNS only"  # every line of a multi-line statement


def test_nested_comments_win_and_function_comments_stay_on_the_def():
    source = ("# the rule\ndef rule(e):\n    # loop\n    for x in y:\n        # inner\n"
              "        if x:\n            return True\n    return False\n")
    assert statement_comments(source) == {2: "the rule", 4: "loop", 5: "loop", 6: "inner",
                                          7: "inner"}


def test_broken_source_has_no_comments():
    assert statement_comments("def rule(:\n") == {}
