"""Context stage: read every file, rank the relevant ones, pack the token budget."""

from codemonkeys.context.files import Enumeration, SourceFile, enumerate_files
from codemonkeys.context.packing import PackedFile, pack_files, render_file
from codemonkeys.context.records import ContextRecord
from codemonkeys.context.stage import run_context
from codemonkeys.llm.tokens import count_tokens

__all__ = [
    "ContextRecord",
    "Enumeration",
    "PackedFile",
    "SourceFile",
    "count_tokens",
    "enumerate_files",
    "pack_files",
    "render_file",
    "run_context",
]
