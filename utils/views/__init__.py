"""Pictures and widgets: the lessons' views of tokens and attention, and their diagrams.

    tokens              coloured token pieces, and an explorer that switches tokenizers
    attention_heatmaps  attention weights as heat maps (matplotlib) and a widget to explore heads
    attention_lines     head view and model view in HTML/SVG, drawn here, working offline
    diagrams            boxes and arrows: the block diagrams of lesson 05
    how_many_heads_plots  lesson 04's experiment: accuracy per head count, each head's weights

The model code never imports these: a model knows no screen.
"""
