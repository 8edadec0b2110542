"""What the hg client (Mercurial 6.3.2) sends for a getbundle, for tests that
replay or build getbundle requests by hand (FACTS.md section 1)."""

HG_BUNDLECAPS = (
    "HG20%2Cbundle2%3DHG20%250Abookmarks%250Achangegroup%253D01%252C02%250Acheckheads"
    "%253Drelated%250Adigests%253Dmd5%252Csha1%252Csha512%250Aerror%253Dabort%252C"
    "unsupportedcontent%252Cpushraced%252Cpushkey%250Ahgtagsfnodes%250Alistkeys%250A"
    "phases%253Dheads%250Apushkey%250Aremote-changegroup%253Dhttp%252Chttps%250Astream"
    "%253Dv2")
HG_PROTO = "0.1 0.2 comp=zstd,zlib,none,bzip2 partial-pull"
NULL_NODE = "0" * 40


def clone_args(heads, common=(NULL_NODE,)):
    """The X-HgArg value of a full clone of a repository with these heads."""
    return (f"bookmarks=1&bundlecaps={HG_BUNDLECAPS}&cg=1&common={'+'.join(common)}"
            f"&heads={'+'.join(heads)}&listkeys=bookmarks&phases=1")


def getbundle_headers(args, proto=HG_PROTO):
    """The request headers hg sends with a getbundle whose arguments are args."""
    return {"X-HgArg-1": args, "X-HgProto-1": proto, "Accept": "application/mercurial-0.1",
            "Accept-Encoding": "identity", "Vary": "X-HgArg-1,X-HgProto-1"}


def clone_headers(heads):
    """The headers of a full clone's getbundle for a repository with these heads."""
    return getbundle_headers(clone_args(heads))
