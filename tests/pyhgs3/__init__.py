"""pyhgs3: test harness for mod_hgs3cache, in the style of httpd's test/pyhttpd.

Real servers only: httpd with the built module, hgweb under mod_wsgi or CGI,
the real hg client, and S3-compatible stores that verify SigV4 signatures.
"""
