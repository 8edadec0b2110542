# hgweb under mod_wsgi. mod_hgs3cache needs no change here: hgweb runs
# unchanged, and is simply not called for cache hits.
from mercurial.hgweb import hgweb

application = hgweb(b"/srv/hg/hgweb.config")
