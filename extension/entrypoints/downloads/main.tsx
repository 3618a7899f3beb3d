import { render } from 'preact';
import { Downloads } from './Downloads';
import '../../components/style.css';
import './downloads.css';

const root = document.getElementById('app');
if (root) render(<Downloads />, root);
