from langgraph_rlm.llm.replies import clip, code_blocks, without_code


def test_repl_and_python_blocks_in_order():
    text = "Plan.\n```repl\na = 1\n```\nthen\n```python\nprint(a)\n```\n```py\nb = 2\n```"
    assert code_blocks(text) == ["a = 1", "print(a)", "b = 2"]


def test_a_tag_on_the_line_after_the_fence_still_makes_a_repl_block():
    assert code_blocks("```\nrepl\nchunks = []\n```") == ["chunks = []"]
    assert code_blocks("```\npython script.py\n```") == []


def test_other_fences_are_not_code_to_run():
    assert code_blocks("Output looks like:\n```\nx = 1\n```\n```json\n{}\n```") == []


def test_final_in_plain_text_becomes_code():
    assert code_blocks("Done.\nFINAL_VAR(result)") == ["FINAL_VAR('result')"]
    assert code_blocks('FINAL("42")') == ['FINAL("42")']
    assert code_blocks("FINAL(The answer is 42)") == ["FINAL('The answer is 42')"]


def test_final_in_plain_text_counts_in_any_case():
    assert code_blocks("Final(248)") == ["FINAL(248)"]
    assert code_blocks('final_var("total")') == ["FINAL_VAR('total')"]


def test_final_inside_prose_is_not_an_answer():
    assert code_blocks("I will call FINAL(x) once I know x.") == []


def test_without_code_keeps_the_prose():
    assert without_code("Answer: 7\n```repl\nprint(1)\n```") == "Answer: 7"


def test_clip_keeps_head_and_tail():
    text = "A" * 100 + "B" * 100
    clipped = clip(text, 50)
    assert clipped.startswith("A" * 25) and clipped.endswith("B" * 25)
    assert "150 characters omitted" in clipped
    assert clip("short", 50) == "short"


def test_an_empty_block_is_no_code():
    assert code_blocks("```\nrepl\n```") == []
    assert code_blocks("```repl\n\n```\nFINAL(3)") == ["FINAL(3)"]
