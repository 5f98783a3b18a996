"""Text analysis, one definition of each rule: French terms (analysis), sentences, what a question
asks (question).
"""
