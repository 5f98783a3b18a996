"""From files to articles and chunks: corpus loading and cleaning, chunking, adding uploaded files.

"""
