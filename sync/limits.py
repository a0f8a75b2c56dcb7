"""The protocol's limits as plain numbers, importable without pydantic (the terminal's settings need them before its first frame).

:mod:`sync.protocol` re-exports every name here; see its docstring for the rules.
"""

#: Limits a batch must keep (central refuses larger ones with 413).
MAX_RECORDS = 500
MAX_ANSWERS_PER_RECORD = 64
MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_TEXT = 2000
#: Upper bound of sequence numbers, questionnaire versions and counts.
INT32_MAX = 2 ** 31 - 1
INT64_MAX = 2 ** 63 - 1
#: A numeric answer lies within ±this (grades are 1–10; the rest is headroom).
MAX_ANSWER_VALUE = 10 ** 9
#: A message to visitors is at most this many characters per language (one calm line or two).
MAX_MESSAGE_CHARS = 200
