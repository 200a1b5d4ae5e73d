"""Identity resolution: link person records, cluster them and keep stable customer ids."""
