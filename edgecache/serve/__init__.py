"""``edgecache serve``: one edge process in front, the app's worker processes behind it
on unix sockets (nginx + gunicorn in one command)."""
