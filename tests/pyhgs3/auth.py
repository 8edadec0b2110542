"""HTTP Basic authentication for test Locations: an htpasswd file made with
Apache's own htpasswd tool, and the client header."""
import base64
import subprocess

from . import env as E


def write_htpasswd(path, users):
    """Write users ({name: password}) to the htpasswd file at path, readable
    by the server; returns path."""
    flag = "-bc"
    for user, pw in users.items():
        subprocess.run(["htpasswd", flag, str(path), user, pw], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        flag = "-b"
    path.chmod(0o644)
    return path


def basic_auth(user, password):
    """The Authorization header value for user:password."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def auth_location(location, htpasswd_path):
    """A <Location> block that lets in any valid user of the htpasswd file."""
    return f"""\
<Location {location}>
    AuthType Basic
    AuthName "hg"
    AuthBasicProvider file
    AuthUserFile "{htpasswd_path}"
    Require valid-user
</Location>
"""


def user_url(httpd, users, user, path="/repo"):
    """The URL of path on httpd with user's credentials from users ({name: password})."""
    return f"http://{user}:{users[user]}@{E.LOOPBACK}:{httpd.port}{path}"
