"""The in-container command server in Python: ``agent.py``'s protocol with no process
spawned per request but the command itself, and no walk of the work tree after a run.

This package runs INSIDE the sandbox container, as root, under the image's own
``python3`` (``-I -S``: no site-packages, no environment variables read), standard library
only, Python 3.7 or later. ``agent.PY_LAUNCH`` unpacks it (a zip, into the agent's
root-only directory) and starts ``server.main`` when the image has a root-owned python3;
otherwise the bash agent (``agent.AGENT_SCRIPT``) runs. Both keep the same contract, and
the sandbox tests hold either way.

What it saves, measured on the sphinx instance images (a cycle of apply, run and reset):
the bash agent forks ``base64``, ``stat``, ``cat`` and a subshell per request (about 1.5 ms
each here), wraps every run in ``timeout``, ``setpriv``, ``head``, ``dd``, ``tail`` and a
``find`` over the whole tree (1,900 entries: 16-22 ms on overlayfs, whatever the script
did), and resets and patches through bash scripts of a dozen processes. Here:

- ``server``: requests; a run is one fork of the script's bash (as the sandbox user, in its
  own session, under the time and file-size limits), its output capped as it streams;
- ``tracking``: what the run changed in the work tree comes from **inotify** (every
  directory and every regular file's own inode watched, so writes through a hard link or
  a shared memory map are seen too), or from a walk by ctime when inotify cannot be
  trusted for that run;
- ``restore``: reset in process when that list is sound (the listed new entries removed,
  the base's files under the listed paths written again from the index, scratch
  emptied), else the bash reset script of the whole tree;
- ``patching``: ``git apply`` of a patch and the bookkeeping after it, in process; when
  it fails, the bash script tries the other methods and says why.
"""
