"""HTTP Basic authentication for test Locations: an htpasswd file made with
Apache's own htpasswd tool, and the client header."""
import base64
import subprocess


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
